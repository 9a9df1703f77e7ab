# syntax=docker/dockerfile:1
# One image for every role: the web (daphne, the entrypoint), and with a command of
# their own the rq workers, the scheduler and the migrate Job (deploy/kubernetes).
# Checked in the suite (tests/deploy/test_kubernetes.py), not built there: no Docker engine.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=waplatform.settings \
    STATIC_ROOT=/app/staticfiles \
    WAP_VAR_DIR=/var/lib/waplatform \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/waplatform/prometheus

WORKDIR /app

# Dependencies before the code: a code change does not reinstall them.
COPY requirements.txt .
RUN pip install -r requirements.txt

RUN groupadd --system --gid 10001 wap \
 && useradd --system --uid 10001 --gid wap --home-dir /app --no-create-home --shell /usr/sbin/nologin wap

COPY . .

# Static files are part of the image (whitenoise serves them): no volume, no step at start.
# The key exists only for this step; the settings touch neither the database nor Redis here.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v0 \
 && mkdir -p /var/lib/waplatform/prometheus \
 && chown -R wap:wap /var/lib/waplatform

USER 10001:10001
EXPOSE 8000

ENTRYPOINT ["daphne"]
CMD ["-b", "0.0.0.0", "-p", "8000", "--proxy-headers", "waplatform.asgi:application"]

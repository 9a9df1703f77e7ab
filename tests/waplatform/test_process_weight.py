"""What every Django process of the platform loads: a worker must not carry the web's libraries.

Each rq worker, pool parent and the scheduler is a full `django.setup()`; a module
loaded there is paid for in every one of them (docs/performance.md, capacity).
"""

import json
import os
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# What a worker process runs: setup, the worker class, and the jobs of every queue.
WORKER = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "waplatform.settings")
import django
django.setup()
import waplatform.workers, waplatform.jobs, messaging.jobs, agents.jobs, pooling.jobs
print(json.dumps(sorted(sys.modules)))
"""

# Web-only weight: the API schema generator, which pulls DRF's test client (django.test, jinja2)
# and, through DRF's compat module, django.contrib.postgres and psycopg (~20 MB per process).
WEB_ONLY = ["drf_spectacular.plumbing", "rest_framework.test", "django.test", "jinja2", "psycopg",
            # loaded only where used: the Firestore client (~50 MB), daphne's Twisted (~40 MB), BM25's numpy
            "google.cloud.firestore", "twisted", "numpy"]


def test_a_worker_process_loads_no_web_only_library(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'weight.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", WORKER], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))

    assert [name for name in WEB_ONLY if name in loaded] == []


SCHEDULER = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "waplatform.settings")
import django
django.setup()
import waplatform.cron
print(json.dumps(sorted(sys.modules)))
"""


def test_the_cron_scheduler_registers_every_job_without_the_firestore_client(tmp_path):
    # It only names the jobs; the mirror's sweep used to bring gRPC and Firestore along (~27 MB).
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'weight.sqlite3'}"}
    result = subprocess.run([sys.executable, "-c", SCHEDULER], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))

    assert [name for name in WEB_ONLY + ["grpc"] if name in loaded] == []


def test_the_api_schema_still_describes_the_api_key_scheme(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")

    assert schema.status_code == 200
    assert "apiKey" in schema.json()["components"]["securitySchemes"]


def test_a_worker_pool_process_skips_the_url_checks_that_load_the_api(tmp_path):
    # Django's system checks import the URLconf (and the API's libraries); manage.py
    # run_worker_pool used to run them in every pool parent and, by fork, every worker.
    # A real pool in burst mode (it exits once its empty queue is drained); -X importtime
    # names every module the process imported.
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'weight.sqlite3'}"}
    result = subprocess.run([sys.executable, "-X", "importtime", "manage.py", "run_worker_pool", "media",
                             "--num-workers", "1", "--burst"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "rq.worker_pool" in loaded  # it did start a pool

    assert [name for name in WEB_ONLY if name in loaded] == []

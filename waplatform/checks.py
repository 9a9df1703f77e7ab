"""System checks run by every manage.py command (migrate, the workers, the scheduler) and by
waplatform.asgi before daphne serves: a misconfiguration that would corrupt data across
hosts stops the process instead of starting it."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand


def _shared_database() -> bool:
    # SQLite is a file on this host; any server database may be reached by several hosts.
    return "sqlite" not in settings.DATABASES["default"]["ENGINE"]


@checks.register()
def generated_keys_with_a_shared_database(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if not _shared_database():
        return []
    errors = []
    if getattr(settings, "SECRET_KEY_GENERATED", False):
        errors.append(checks.Error(
            "SECRET_KEY was generated into var/secret_key on this host, but DATABASE_URL names a shared "
            "database: each host would generate its own key and reject the others' sessions and signatures.",
            hint="Set SECRET_KEY in the environment, the same value on every host "
                 "(python -c 'import secrets; print(secrets.token_urlsafe(50))').",
            id="waplatform.E001",
        ))
    if getattr(settings, "SECRETS_ENCRYPTION_KEYS_GENERATED", False):
        errors.append(checks.Error(
            "SECRETS_ENCRYPTION_KEYS was generated into var/secrets_encryption_key on this host, but DATABASE_URL "
            "names a shared database: secrets encrypted on one host would not decrypt on another.",
            hint="Set SECRETS_ENCRYPTION_KEYS in the environment, the same on every host "
                 "(docs/security.md, 'Secrets at rest').",
            id="waplatform.E002",
        ))
    return errors


def refuse_to_serve_with_failed_checks() -> None:
    """For entry points Django runs no checks for (daphne)."""
    errors = generated_keys_with_a_shared_database()
    if errors:
        raise ImproperlyConfigured("\n".join(f"{e.id}: {e.msg} {e.hint}" for e in errors))


class ServiceCommand(BaseCommand):
    """A manage.py command that runs as one of the platform's processes (workers, scheduler, bridges).

    Django's own checks import the URLconf, and with it the API's libraries (drf-spectacular,
    DRF's test client, psycopg through DRF's compat module: ~25 MB), into every one of these
    processes although none serves a URL. migrate and the web run the full checks; these run
    the platform's own, which are what must stop a misconfigured host.
    """

    requires_system_checks = []

    def execute(self, *args, **options):
        refuse_to_serve_with_failed_checks()
        return super().execute(*args, **options)

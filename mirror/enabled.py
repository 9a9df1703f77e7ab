"""Whether the Firestore mirror is on: settings only, so asking costs no Firestore client (gRPC, ~27 MB)."""

from django.conf import settings


def is_enabled() -> bool:
    return bool(settings.FIRESTORE_PROJECT)

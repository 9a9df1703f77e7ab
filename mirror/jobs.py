"""rq entry points of the mirror: take ids, re-read, write what the database says now.

mirror.services brings the Firestore client (gRPC, ~27 MB): it is imported when a job
runs, and not at all while the mirror is off. The cron scheduler imports this module
only to register the sweep.
"""

from mirror.enabled import is_enabled


def mirror_object(kind: str, tenant_id: int, object_id: int, event: dict | None = None, attempt: int = 1) -> str:
    from mirror import services

    return services.mirror_object(kind=kind, tenant_id=tenant_id, object_id=object_id, event=event, attempt=attempt)


def sweep_backlog() -> int:
    """Every minute on `maintenance` (waplatform/cron.py): jobs whose enqueue failed."""
    if not is_enabled():
        return 0
    from mirror import services

    return services.sweep_backlog()

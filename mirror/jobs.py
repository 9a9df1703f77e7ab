"""rq entry points of the mirror: take ids, re-read, write what the database says now."""

from mirror import services


def mirror_object(kind: str, tenant_id: int, object_id: int, event: dict | None = None, attempt: int = 1) -> str:
    return services.mirror_object(kind=kind, tenant_id=tenant_id, object_id=object_id, event=event, attempt=attempt)


def sweep_backlog() -> int:
    """Every minute on `maintenance` (waplatform/cron.py): jobs whose enqueue failed."""
    return services.sweep_backlog()

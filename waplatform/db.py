"""Reads that may go to the read replica (DATABASE_REPLICA_URL), and nothing else.

Only code that says so reads from the replica: the operations pages, the /metrics
aggregates, cost reports and CSV exports run inside `analytics()` (or a view wrapped by
`analytics_view`). The router then sends their reads to the replica; writes always go to
the primary, inside the block or not, so nothing can be written to the replica. Every
other read stays on the primary, which is never behind.

A replica that is not configured, or does not answer, leaves those reads on the primary:
the pages stay up, one more load on the primary. A replica found down is not asked again
for DATABASE_REPLICA_RETRY_SECONDS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.db import DatabaseError, connections

REPLICA = "replica"
logger = logging.getLogger(__name__)

_reads_on_replica: ContextVar[bool] = ContextVar("wap_reads_on_replica", default=False)
_replica_down_until = 0.0


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def _replica_answers() -> bool:
    global _replica_down_until
    if not replica_configured() or time.monotonic() < _replica_down_until:
        return False
    try:
        with connections[REPLICA].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError as exc:
        # A connection the replica dropped when it stopped is dead for good: close it so the
        # next try opens a fresh one.
        connections[REPLICA].close()
        _replica_down_until = time.monotonic() + settings.DATABASE_REPLICA_RETRY_SECONDS
        logger.warning("read replica unreachable, analytics reads go to the primary for %.0f s: %s",
                       settings.DATABASE_REPLICA_RETRY_SECONDS, exc)
        return False


@contextmanager
def analytics() -> Iterator[str]:
    """Reads inside go to the replica when it answers; yields the alias they go to."""
    on_replica = _replica_answers()
    token = _reads_on_replica.set(on_replica)
    try:
        yield REPLICA if on_replica else "default"
    finally:
        _reads_on_replica.reset(token)


def analytics_view(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        with analytics():
            return view(request, *args, **kwargs)
    return wrapped


class AnalyticsRouter:
    """settings.DATABASE_ROUTERS: the replica for reads inside analytics(), the primary for the rest."""

    def db_for_read(self, model, **hints):
        return REPLICA if _reads_on_replica.get() else "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica is a copy of the primary: same rows, same ids

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"  # the replica replays the primary's migrations itself


@dataclass(frozen=True)
class ReplicaState:
    configured: bool
    on_replica: bool  # analytics reads go there now
    lag_seconds: float | None
    error: str = ""

    def describe(self) -> str:
        if not self.configured:
            return "n/a (no DATABASE_REPLICA_URL: analytics reads on the primary)"
        if not self.on_replica:
            return f"unreachable, analytics reads on the primary{': ' + self.error if self.error else ''}"
        if self.lag_seconds is None:
            return "n/a (lag not measurable on this database)"
        return f"{self.lag_seconds:.1f} s behind the primary"


# 0 when the replica has replayed all it received (an idle primary sends nothing, so the age of
# the last replayed transaction would grow without any lag); else the age of the last one replayed.
_LAG_SQL = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN NULL
  WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
  ELSE EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())
END
"""


def replica_state() -> ReplicaState:
    """For the Health page: where analytics reads go, and how far behind the replica is."""
    if not replica_configured():
        return ReplicaState(configured=False, on_replica=False, lag_seconds=None)
    with analytics() as alias:
        if alias != REPLICA:
            return ReplicaState(configured=True, on_replica=False, lag_seconds=None)
        connection = connections[REPLICA]
        if connection.vendor != "postgresql":
            return ReplicaState(configured=True, on_replica=True, lag_seconds=None)
        try:
            with connection.cursor() as cursor:
                cursor.execute(_LAG_SQL)
                (lag,) = cursor.fetchone()
        except DatabaseError as exc:
            return ReplicaState(configured=True, on_replica=False, lag_seconds=None, error=str(exc).strip())
        return ReplicaState(configured=True, on_replica=True, lag_seconds=None if lag is None else float(lag))

"""The relay of the transactional outbox: every subscriber hears of every event, at least once.

`waplatform.events.publish_event` writes an OutboxEvent row in the caller's
transaction and, right after commit, hands the event to the subscribers in the
same process (`events.deliver_committed`): the fast path, no queue hop. Whatever did
not go through — the process died between commit and fan-out, a subscriber
raised, Redis was away — stays `pending` on the row, and `relay()` (every few
seconds on the scheduler) hands it to the subscribers that still owe it.

Order: the relay walks undelivered rows in id order; once a subscriber has not
taken an event of an ordering key (a conversation), it is not given a later
event of that key in the same pass, so a retried event never overtakes the
ones after it for that subscriber. Subscribers are idempotent on the event id:
a crash after a subscriber ran but before the row was updated repeats it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from waplatform.events import RELAY_WAKE_FLAG, hand_over, record_outcome
from waplatform.locks import single_flight
from waplatform.models import OutboxEvent
from waplatform.queues import take_flag

logger = logging.getLogger(__name__)


@dataclass
class RelayReport:
    delivered: int = 0
    retried: int = 0
    passes: int = 0

    def __str__(self) -> str:
        return f"delivered {self.delivered}, still pending {self.retried}"


def _one_pass(now, report: RelayReport) -> int:
    rows = list(
        OutboxEvent.objects.filter(delivered_at__isnull=True)
        .order_by("pk")
        .values("pk", "ordering_key", "pending", "next_attempt_at", "envelope", "attempts")[: settings.OUTBOX_BATCH_SIZE]
    )
    blocked: set[tuple[str, str]] = set()
    handled = 0
    delivered: list[int] = []
    for row in rows:
        key = row["ordering_key"]
        due = row["next_attempt_at"] <= now
        names = [n for n in row["pending"] if not (key and (n, key) in blocked)] if due else []
        errors = hand_over(row["envelope"], names) if names else {}
        still = [n for n in row["pending"] if n not in names or n in errors]
        if key:
            blocked.update((n, key) for n in still)
        if names:
            handled += 1
            if still:
                record_outcome(row["pk"], still_pending=still, errors=errors, attempt=row["attempts"] + 1)
                report.retried += 1
            else:
                delivered.append(row["pk"])
    if delivered:
        # One write for the pass: a crash before it repeats these hand-overs, which
        # subscribers take idempotently (by event id).
        OutboxEvent.objects.filter(pk__in=delivered).update(pending=[], delivered_at=timezone.now(),
                                                            attempts=F("attempts") + 1)
        report.delivered += len(delivered)
    report.passes += 1
    return handled if len(rows) == settings.OUTBOX_BATCH_SIZE else 0


def relay(*, time_budget: float | None = None) -> RelayReport:
    """Hand every due pending event to the subscribers that still owe it. Single-flight."""
    report = RelayReport()
    budget = settings.OUTBOX_RELAY_TIME_BUDGET_SECONDS if time_budget is None else time_budget
    with single_flight("outbox-relay", timeout=budget + 60) as acquired:
        if not acquired:
            return report
        started = time.monotonic()
        take_flag(RELAY_WAKE_FLAG)  # from here on, a commit's wake-up means "go again"
        while time.monotonic() - started < budget:
            # A full batch in which something was handled may hide more behind it; a commit
            # during the pass set the wake flag (its own wake job found the relay busy).
            if not _one_pass(timezone.now(), report) and not take_flag(RELAY_WAKE_FLAG):
                break
    return report


def purge_delivered() -> int:
    cutoff = timezone.now() - timedelta(hours=settings.OUTBOX_RETENTION_HOURS)
    return OutboxEvent.objects.filter(delivered_at__lt=cutoff).delete()[0]

"""Batched sends: one job per lane of a tenant sends every due message of that lane.

A job per message paid rq's bookkeeping, a fresh bridge client and a claim per
message, which capped sends below rq's own no-op rate. Here an accepted
message only makes sure one `deliver_batch` job is waiting for its tenant's
lane (a Redis flag, schedule_batch); a recipient always takes the same one of
the tenant's SEND_BATCH_LANES lanes (send_lane), and one job at a time sends a
lane (a Redis lock), so a tenant's backlog uses that many workers while each
recipient's messages stay in order. The job claims up to SEND_BATCH_SIZE due
messages of its lane in one statement, paces each on the number's bucket
(messaging.pacing), sends them in order over one bridge client, records the
results SEND_BATCH_RECORD_EVERY at a time, and goes on until the lane has
nothing due or SEND_BATCH_SECONDS are used; once it lets go of the lane, a
job is enqueued at the back of the queue for what is still due (so the tier's
other tenants get their turn).

The rules of single sends hold: the rows are the truth (a claimed message is
`sending` under a lease; a killed job's messages are claimable again when the
lease ends, and the sweeper re-enqueues what no job points at), status only
moves up, and anything that must wait (pacing beyond the inline wait, a
retry's backoff, a paused or not-ready session) is postponed to its own
`deliver_message` job exactly as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging.models import Message
from messaging.services.delivery import send_attempt, tenant_send_pause_seconds, wait_for_pace
from messaging.services.statuses import apply_pending_statuses, fail_locked, fail_message, record_sent_many
from pooling import services as pooling
from tenants.models import Tenant
from waplatform import lease_owners, redis_epoch
from waplatform.events import fan_out_by_relay
from waplatform.redis import get_redis
from waplatform.queues import enqueue_on_commit, enqueue_once_on_commit, take_flag


def send_lane(contact_id: int) -> int:
    """The lane of the tenant's sends a recipient's messages always take: one job at a time
    sends a lane, so each recipient's messages reach the bridge in the order accepted."""
    return contact_id % settings.SEND_BATCH_LANES


def batch_flag(tenant_id: int, lane: int) -> str:
    return f"wap:send-batch:{tenant_id}:{lane}"


def lane_lock_key(tenant_id: int, lane: int) -> str:
    return f"wap:send-lane:{tenant_id}:{lane}"


_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_LET_GO = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_AT = "@"


@contextmanager
def _lane_held(tenant_id: int, lane: int) -> Iterator[bool]:
    """Yields True to the lane's one sender. The lock names its holder as a lease does
    (waplatform.lease_owners), so a sender killed mid-turn, its lock still set, is known
    dead and replaced at once, as its claimed messages are (messaging.services.recovery).
    The lease's length bounds a holder whose death cannot be told (another host, Redis emptied)."""
    redis = get_redis()
    key = lane_lock_key(tenant_id, lane)
    token = f"{lease_owners.current_owner()}{_AT}{time.time():.3f}"
    ttl_ms = int(settings.MESSAGE_SEND_LEASE_SECONDS * 1000)
    held = bool(redis.set(key, token, nx=True, px=ttl_ms))
    if not held:
        holder = redis.get(key)
        if holder is not None and _holder_dead(holder.decode(), redis):
            held = bool(redis.eval(_TAKE_OVER, 1, key, holder, token, ttl_ms))
    try:
        yield held
    finally:
        if held:
            redis.eval(_LET_GO, 1, key, token)


def _holder_dead(holder: str, redis) -> bool:
    owner, _, taken_at = holder.rpartition(_AT)
    try:
        leased_at = datetime.fromtimestamp(float(taken_at), tz=dt_timezone.utc)
    except ValueError:
        return False
    return lease_owners.owner_is_dead(owner, leased_at=leased_at, redis=redis,
                                      epoch_started_at=redis_epoch.started_at(redis))


def schedule_batch(*, tenant_id: int, queue: str, lane: int) -> None:
    """After commit, make sure one deliver_batch job is waiting for the tenant's `lane` on `queue`."""
    enqueue_once_on_commit("messaging.jobs.deliver_batch", tenant_id, lane, queue=queue,
                           flag=batch_flag(tenant_id, lane), flag_ttl=settings.SEND_BATCH_FLAG_SECONDS)


def _due(tenant_id: int, lane: int | None = None):
    """The tenant's messages a batch may send now: all of them, or one lane's."""
    now = timezone.now()
    # Strictly due: a postponed message (paced, retrying) has its own deliver_message job
    # for its time, which tolerates rq's scheduler running it early; a batch taking it
    # early would only postpone it again.
    due = Message.objects.filter(tenant_id=tenant_id, direction=Message.Direction.OUT,
                                 tenant__status=Tenant.Status.ACTIVE).filter(
        Q(status=Message.Status.QUEUED, next_attempt_at__isnull=True)
        | Q(status=Message.Status.QUEUED, next_attempt_at__lte=now)
        | Q(status=Message.Status.SENDING, lease_expires_at__lt=now))
    if lane is not None:
        due = due.alias(send_lane=F("contact_id") % settings.SEND_BATCH_LANES).filter(send_lane=lane)
    return due


def claim_batch(*, tenant_id: int, limit: int, lane: int | None = None) -> list[Message]:
    """Up to `limit` due messages of the tenant, oldest first, moved to `sending` under one lease.

    SKIP LOCKED on PostgreSQL lets two batch jobs of one tenant take disjoint
    messages; SQLite's IMMEDIATE transactions serialise them instead.
    """
    now = timezone.now()
    expired_before = now - timedelta(seconds=settings.MESSAGE_EXPIRE_AFTER_SECONDS)
    with transaction.atomic():
        rows = list(_due(tenant_id, lane).select_for_update(skip_locked=True, of=("self",))
                    .order_by("pk").values_list("pk", "accepted_at")[:limit])
        ids = [pk for pk, accepted_at in rows if accepted_at >= expired_before]
        for message in Message.objects.filter(pk__in=[pk for pk, _ in rows if pk not in ids]):
            fail_locked(message=message, code="expired", reason="Not sent within MESSAGE_EXPIRE_AFTER_SECONDS of acceptance.")
        if not ids:
            return []
        # The attempt is counted at the claim (see delivery._start_sending).
        Message.objects.filter(pk__in=ids).update(
            status=Message.Status.SENDING, status_rank=Message.RANK[Message.Status.SENDING],
            lease_expires_at=now + timedelta(seconds=settings.MESSAGE_SEND_LEASE_SECONDS),
            lease_owner=lease_owners.current_owner(),  # a killed worker's batch is reclaimed at once
            attempts=F("attempts") + 1)
    return list(Message.objects.select_related("tenant__tier", "contact", "media").filter(pk__in=ids).order_by("pk"))


def _release(messages: list[Message]) -> None:
    """Claimed messages this job will not reach: due again at once, their attempt given back."""
    if messages:
        Message.objects.filter(pk__in=[m.pk for m in messages], status=Message.Status.SENDING).update(
            status=Message.Status.QUEUED, status_rank=Message.RANK[Message.Status.QUEUED],
            lease_expires_at=None, next_attempt_at=timezone.now(), attempts=F("attempts") - 1)


WAITING = "waiting"


def _wait_all(tenant: Tenant, *, delay: float, reason: str) -> str:
    """The tenant's due messages wait `delay` seconds (not an attempt); one batch job comes back for them."""
    waiting = _due(tenant.pk).filter(status=Message.Status.QUEUED).update(
        next_attempt_at=timezone.now() + timedelta(seconds=delay), error_reason=reason[:1000])
    if waiting:
        enqueue_on_commit("messaging.jobs.deliver_batch", tenant.pk, queue=tenant.tier.send_queue, delay=delay)
    return f"{WAITING} {delay:.0f}s: {waiting} messages: {reason}"


def deliver_batch(*, tenant_id: int, lane: int | None = None) -> str:
    """Send one lane of the tenant's due messages (see the module docstring). Returns what happened,
    for logs and tests. Without a lane (a tenant's wait ended, a job from before lanes) it
    schedules a job for each lane that has due messages."""
    if lane is None or lane >= settings.SEND_BATCH_LANES:
        return _schedule_due_lanes(tenant_id)
    # Before looking for work: a message committed after this point gets a job of its own.
    take_flag(batch_flag(tenant_id, lane))
    look_again = False
    try:
        with _lane_held(tenant_id, lane) as ours:
            if not ours:
                # Its sender looks for due messages once it lets go of the lane (below): a message
                # committed now is not left behind, and two jobs never send one recipient's messages.
                return "lane busy"
            # Also after a failed or timed-out turn: jobs that found the lane busy left theirs to this one.
            look_again = True
            outcome, waiting = _deliver_lane(tenant_id, lane)
            # A turn that ended in a wait has a delayed job coming back; a lease-expired row
            # the wait did not postpone would otherwise bring this job straight back, and again.
            look_again = not waiting
            return outcome
    finally:
        if look_again and _due(tenant_id, lane).exists():
            tenant = Tenant.objects.select_related("tier").get(pk=tenant_id)
            schedule_batch(tenant_id=tenant_id, queue=tenant.tier.send_queue, lane=lane)  # at the back of the queue


def _schedule_due_lanes(tenant_id: int) -> str:
    tenant = Tenant.objects.select_related("tier").filter(pk=tenant_id, status=Tenant.Status.ACTIVE).first()
    lanes = [lane for lane in range(settings.SEND_BATCH_LANES) if tenant and _due(tenant_id, lane).exists()]
    for lane in lanes:
        schedule_batch(tenant_id=tenant_id, queue=tenant.tier.send_queue, lane=lane)
    return f"scheduled lanes {lanes}" if lanes else "nothing to do"


def _deliver_lane(tenant_id: int, lane: int) -> tuple[str, bool]:
    """(what happened, whether the lane now waits for a delayed job: session not ready, tenant paused)."""
    tenant = Tenant.objects.select_related("tier").filter(pk=tenant_id, status=Tenant.Status.ACTIVE).first()
    if tenant is None or not _due(tenant_id, lane).exists():
        return "nothing to do", False
    try:
        sending = pooling.get_sending_session(tenant=tenant)
    except pooling.NoSession as exc:
        failed = 0
        while messages := claim_batch(tenant_id=tenant_id, limit=settings.SEND_BATCH_SIZE, lane=lane):
            for message in messages:
                fail_message(message=message, code="no_session", reason=str(exc))
            failed += len(messages)
        return f"failed: no session ({failed} messages)", False
    except pooling.SessionNotReady as exc:
        # Not an attempt: the slot is down or the session not WORKING; wait for failover.
        return _wait_all(tenant, delay=settings.MESSAGE_SESSION_WAIT_SECONDS, reason=str(exc)), True
    paused_for = tenant_send_pause_seconds(tenant_id=tenant_id)
    if paused_for:
        _close(sending)
        return _wait_all(tenant, delay=paused_for, reason="sends paused after Meta's spam rate limit (131048)"), True
    try:
        with fan_out_by_relay():
            outcome = _send_due(tenant, sending, lane)
            return outcome, outcome.startswith(WAITING)
    finally:
        _close(sending)


def _close(sending) -> None:
    close = getattr(sending.bridge, "close", None)
    if close:
        close()


class _Recorder:
    """Sent results, written SEND_BATCH_RECORD_EVERY at a time (or after half a second)."""

    def __init__(self, tenant: Tenant, slot_id: int) -> None:
        self.tenant, self.slot_id = tenant, slot_id
        self.pending: list[tuple[int, str, datetime]] = []
        self.since = 0.0
        self.recorded = 0

    def add(self, message_id: int, provider_message_id: str) -> None:
        if not self.pending:
            self.since = time.monotonic()
        self.pending.append((message_id, provider_message_id, timezone.now()))
        if len(self.pending) >= settings.SEND_BATCH_RECORD_EVERY or time.monotonic() - self.since > 0.5:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        sent, self.pending = self.pending, []
        self.recorded += len(record_sent_many(sent=sent, slot_id=self.slot_id))
        # After our commit: a status that beat us here is now in PendingStatus (see apply_pending_statuses).
        apply_pending_statuses(tenant_id=self.tenant.pk, provider_message_ids=[p for _, p, _ in sent])


def _send_due(tenant: Tenant, sending, lane: int) -> str:
    started = time.monotonic()
    recorder = _Recorder(tenant, sending.slot_id)
    others = 0
    paused = False
    try:
        while not paused:
            messages = claim_batch(tenant_id=tenant.pk, limit=settings.SEND_BATCH_SIZE, lane=lane)
            if not messages:
                break
            claimed_at = time.monotonic()
            for index, message in enumerate(messages):
                # Stop well inside the lease, or another job could take these messages while we still hold them.
                if paused or time.monotonic() - claimed_at > settings.MESSAGE_SEND_LEASE_SECONDS / 2:
                    _release(messages[index:])
                    break
                outcome = wait_for_pace(message=message, sending=sending)
                if outcome is None:
                    outcome, result = send_attempt(message=message, sending=sending, attempt=message.attempts)
                    if result is not None:
                        recorder.add(message.pk, result.provider_message_id)
                        continue
                others += 1
                paused = outcome.startswith("paused")  # Meta's 131048: the tenant's sends stop here
            recorder.flush()
            # At least one claim per job, however small the budget: the job must make progress.
            if time.monotonic() - started >= settings.SEND_BATCH_SECONDS or tenant_send_pause_seconds(
                    tenant_id=tenant.pk):
                break
    finally:
        recorder.flush()
    if recorder.recorded:
        pooling.touch_session_activity(tenant=tenant)
    paused_for = tenant_send_pause_seconds(tenant_id=tenant.pk)
    if paused_for:
        return _wait_all(tenant, delay=paused_for, reason="sends paused after Meta's spam rate limit (131048)")
    return f"sent {recorder.recorded}, postponed or failed {others}"

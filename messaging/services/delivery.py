"""Delivering an accepted message: claim it, find the tenant's session, pace, call the bridge.

The bridge call runs outside any transaction; the claim's lease keeps other
jobs off the message meanwhile (messaging.leases). Meta's policy codes are
handled here: 131048 (spam rate limit) pauses the tenant's sends, 131047
(re-engagement) explains what would reach the contact.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from messaging import leases
from messaging.models import Message
from messaging.pacing import reserve_send
from messaging.services.media import outbound_media
from messaging.services.statuses import apply_pending_statuses, fail_locked, fail_message, record_sent
from pooling import services as pooling
from pooling.bridges.base import OutboundMessage, PermanentBridgeError, SendResult, TransientBridgeError
from tenants.models import Tenant
from waplatform import alerts, lease_owners
from waplatform.backoff import backoff_delay
from waplatform.queues import enqueue_on_commit
from waplatform.redis import get_redis

SPAM_RATE_LIMIT_CODE = "131048"
REENGAGEMENT_CODE = "131047"


def _claim(message_id: int) -> Message | None:
    """Take the message for one send attempt (status `sending`, leased), or None when there is nothing to do.

    A `sending` message whose lease ran out belongs to a killed worker: it is taken again.
    """
    # A suspended tenant's messages are not claimable: they stay queued and due, and
    # reactivation (messaging.services.resume) enqueues them again.
    claimable = Message.objects.filter(direction=Message.Direction.OUT, tenant__status=Tenant.Status.ACTIVE).filter(
        Q(status=Message.Status.QUEUED) | Q(status=Message.Status.SENDING, lease_expires_at__lt=timezone.now()))
    return leases.claim(claimable, pk=message_id, lease_field="lease_expires_at",
                        lease_seconds=settings.MESSAGE_SEND_LEASE_SECONDS, take=_start_sending)


def _start_sending(message: Message, now: datetime) -> list[str] | None:
    if message.status == Message.Status.QUEUED and message.next_attempt_at and message.next_attempt_at > now + timedelta(seconds=1):
        return None  # an early duplicate; the job scheduled for next_attempt_at will come
    if message.accepted_at < now - timedelta(seconds=settings.MESSAGE_EXPIRE_AFTER_SECONDS):
        fail_locked(message=message, code="expired", reason="Not sent within MESSAGE_EXPIRE_AFTER_SECONDS of acceptance.")
        return None
    message.status = Message.Status.SENDING
    message.status_rank = Message.RANK[Message.Status.SENDING]
    message.lease_owner = lease_owners.current_owner()
    # Counted at the claim, so a worker killed mid-call still used up an attempt; a
    # release that never reached the bridge gives it back (postpone_message).
    message.attempts += 1
    return ["status", "status_rank", "lease_owner", "attempts"]


@transaction.atomic
def postpone_message(
    *, message: Message, delay: float, reason: str = "", paced: bool = False, booked_at: datetime | None = None,
    attempted: bool = True,
) -> None:
    """Put a `sending` message back to `queued`, due in `delay` seconds (or at its
    existing booking `booked_at`), and schedule its job. `attempted=False`: the
    bridge was not called, so the claim's attempt is given back."""
    due = booked_at or timezone.now() + timedelta(seconds=delay)
    updated = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED,
        status_rank=Message.RANK[Message.Status.QUEUED],
        next_attempt_at=due,
        lease_expires_at=None,
        paced_until=due if paced else None,
        error_reason=reason[:1000] if reason else F("error_reason"),
        attempts=F("attempts") if attempted else F("attempts") - 1,
    )
    if updated:
        schedule_delivery(message_id=message.pk, queue=message.tenant.tier.send_queue, delay=delay)


def schedule_delivery(*, message_id: int, queue: str, delay: float) -> None:
    """After commit, enqueue the delivery job now or in `delay` seconds (rq's scheduler runs it)."""
    enqueue_on_commit("messaging.jobs.deliver_message", message_id, queue=queue, delay=delay)


def _outbound(message: Message) -> OutboundMessage:
    p = message.payload or {}
    return OutboundMessage(
        to=message.contact.wa_id,
        type=message.type,
        text=message.text,
        media_url=p.get("url", ""),
        caption=p.get("caption", "") or (message.text if message.type != "text" else ""),
        filename=p.get("filename", ""),
        latitude=p.get("latitude"),
        longitude=p.get("longitude"),
        location_name=p.get("name", ""),
        reaction_to=p.get("message_id", ""),
        emoji=p.get("emoji", ""),
        template=p.get("template"),
        reply_to=message.reply_to,
        correlation=f"wap:{message.tenant_id}:{message.pk}",
    )


def deliver_message(*, message_id: int) -> str:
    """One send attempt. Returns what happened (for logs and tests)."""
    message = _claim(message_id)
    if message is None:
        if Message.objects.filter(pk=message_id, tenant__status=Tenant.Status.SUSPENDED).exists():
            return "waiting: tenant suspended"
        return "nothing to do"
    message = Message.objects.select_related("tenant__tier", "contact", "media").get(pk=message.pk)
    tenant = message.tenant
    try:
        sending = pooling.get_sending_session(tenant=tenant)
    except pooling.NoSession as exc:
        fail_message(message=message, code="no_session", reason=str(exc))
        return "failed: no session"
    except pooling.SessionNotReady as exc:
        # Not an attempt: the slot is down or the session not WORKING; wait for failover.
        postpone_message(message=message, delay=settings.MESSAGE_SESSION_WAIT_SECONDS, reason=str(exc),
                         attempted=False)
        return f"waiting: {exc}"
    paused_for = tenant_send_pause_seconds(tenant_id=tenant.pk)
    if paused_for:
        postpone_message(message=message, delay=paused_for, attempted=False,
                         reason="sends paused after Meta's spam rate limit (131048)")
        return f"paused for {paused_for:.0f}s"
    try:
        postponed = wait_for_pace(message=message, sending=sending)
        if postponed:
            return postponed
        outcome, result = send_attempt(message=message, sending=sending, attempt=message.attempts)
        if result is None:
            return outcome
    finally:
        close = getattr(sending.bridge, "close", None)
        if close:
            close()
    record_sent(message_id=message.pk, provider_message_id=result.provider_message_id, slot_id=sending.slot_id)
    pooling.touch_session_activity(tenant=tenant)
    # After our commit: a status that beat us here is now in PendingStatus (see apply_pending_statuses).
    apply_pending_statuses(tenant_id=tenant.pk, provider_message_ids=[result.provider_message_id])
    return "sent"


def wait_for_pace(*, message: Message, sending) -> str | None:
    """Sleep until the message's send time on its number, if that is near; else postpone it.

    Returns None when the message may be sent now, or what happened when it was postponed.
    """
    booked_wait = _booked_wait_seconds(message)
    if booked_wait is not None:
        # Already booked: rq's scheduler works in whole seconds and may run the job
        # early. Booking again here would push the slot out on every early run (two
        # paced messages could then chase their own bookings forever).
        if booked_wait > settings.PACING_INLINE_WAIT_SECONDS:
            postpone_message(message=message, delay=booked_wait, paced=True, booked_at=message.paced_until,
                             attempted=False)
            return f"paced: {booked_wait:.2f}s (booked)"
        wait = booked_wait
    else:
        wait = reserve_send(
            number_key=f"{sending.slot_id}:{sending.session_name}",
            recipient=message.contact.wa_id,
            dialect=sending.dialect,
            tier_rate=message.tenant.tier.messages_per_second,
        ).wait_seconds
        if wait > settings.PACING_INLINE_WAIT_SECONDS:
            postpone_message(message=message, delay=wait, paced=True, attempted=False)
            return f"paced: {wait:.2f}s"
    if wait > 0:
        time.sleep(wait)
    return None


def send_attempt(*, message: Message, sending, attempt: int) -> tuple[str, SendResult | None]:
    """Call the bridge once for a claimed message whose pacing is done; `attempt` counts this call.

    Returns ("sent", result) for the caller to record, or (what happened, None)
    when the message was failed, postponed or the tenant paused here.
    """
    outbound = _outbound(message)
    if message.media_id and message.media.status != "stored":
        fail_message(message=message, code="media_unavailable",
                     reason=f"Media {message.media_id} is {message.media.status}: {message.media.reason}")
        return "failed: media unavailable", None
    try:
        if message.media_id:
            # Inside the try: a Cloud upload fails like a send (transient or permanent).
            prepared = outbound_media(media=message.media, sending=sending)
            outbound.media_id, outbound.media_data, outbound.media_mimetype = (
                prepared.media_id, prepared.media_data, prepared.mimetype)
            outbound.media_url = prepared.media_url
            outbound.filename = outbound.filename or prepared.filename
        return "sent", sending.bridge.send(sending.session_name, outbound)
    except PermanentBridgeError as exc:
        if str(exc.code) == SPAM_RATE_LIMIT_CODE:
            # Meta's spam limit is the number's, not this message's: stop the tenant's
            # sends for a while and keep the message; waiting message by message would
            # only feed the limit.
            pause_tenant_sends(tenant=message.tenant, reason=exc.reason)
            postpone_message(message=message, delay=settings.SPAM_PAUSE_SECONDS, reason=f"{exc.code}: {exc.reason}")
            return f"paused: {exc}", None
        fail_message(message=message, code=exc.code or "permanent", reason=_explain(exc))
        return f"failed: {exc}", None
    except TransientBridgeError as exc:
        if attempt >= settings.MESSAGE_MAX_ATTEMPTS:
            fail_message(message=message, code=exc.code or "transient",
                         reason=f"gave up after {attempt} attempts: {exc.reason}")
            return f"failed: {exc}", None
        delay = backoff_delay(attempt, base=settings.MESSAGE_RETRY_BASE_SECONDS,
                              cap=settings.MESSAGE_RETRY_MAX_DELAY_SECONDS)
        postpone_message(message=message, delay=delay, reason=f"attempt {attempt}: {exc}")
        return f"retry in {delay:.1f}s: {exc}", None
    except OSError as exc:
        # The stored bytes are gone (storage lost them, or retention ran): nothing to retry.
        fail_message(message=message, code="media_unavailable", reason=f"The media's bytes cannot be read: {exc}")
        return f"failed: {exc}", None


def _booked_wait_seconds(message: Message) -> float | None:
    """Seconds until the send time this message already booked, or None if it booked none."""
    if not message.paced_until:
        return None
    return max(0.0, (message.paced_until - timezone.now()).total_seconds())


def _pause_key(tenant_id: int) -> str:
    return f"wap:send-paused:{tenant_id}"


def pause_tenant_sends(*, tenant: Tenant, reason: str) -> None:
    """Hold every send of the tenant for SPAM_PAUSE_SECONDS (Meta 131048) and tell the operators."""
    get_redis().set(_pause_key(tenant.pk), reason or "131048", ex=settings.SPAM_PAUSE_SECONDS)
    alerts.raise_alert(
        kind="spam_rate_limit",
        key=tenant.slug,
        message=f"Meta's spam rate limit (131048) hit {tenant.slug}: its sends are paused for "
        f"{settings.SPAM_PAUSE_SECONDS // 60} min. {reason}".strip(),
    )


def tenant_send_pause_seconds(*, tenant_id: int) -> float:
    ttl = get_redis().pttl(_pause_key(tenant_id))
    return ttl / 1000 if ttl and ttl > 0 else 0.0


def _explain(exc: PermanentBridgeError) -> str:
    if str(exc.code) == REENGAGEMENT_CODE:
        return (f"{exc.reason} — more than 24 h since the contact last wrote: only a template message "
                "(type \"template\") can reach them until they write again.")
    return exc.reason

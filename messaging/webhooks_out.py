"""Tenants' webhooks: signed, retried, ordered per conversation, never lost on restart.

Every retry lives in the database (status + next_attempt_at); Redis only
holds the job that will run it, and the every-minute sweep re-enqueues any
due delivery whose job is gone. docs/webhooks.md is the tenant-facing side.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta
from functools import partial

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from redis.exceptions import RedisError

from messaging import leases
from messaging.models import WebhookDelivery, WebhookEndpoint
from tenants.models import Tenant
from waplatform import egress
from waplatform.backoff import backoff_delay
from waplatform.queues import enqueue_on_commit
from waplatform.redis import get_redis
from waplatform.stamped_cache import StampedCache

logger = logging.getLogger(__name__)

RETRYABLE_4XX = (408, 429)
USER_AGENT = "wa-platform-webhooks/1"
_client: httpx.Client | None = None


class InvalidWebhookUrl(ValueError):
    pass


# --- signing -------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """X-WA-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_request(delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-WA-Event-Id": delivery.event_id,
        "X-WA-Event-Type": delivery.event_type,
        "X-WA-Timestamp": timestamp,
        "X-WA-Signature": sign(delivery.endpoint.secret, timestamp, body),
        "X-WA-Delivery-Attempt": str(delivery.attempts),
    }
    return body, headers


# --- endpoints --------------------------------------------------------------------


def check_url(url: str) -> str:
    """Refuse what the egress policy refuses (waplatform/egress.py), with its reason.

    Checked again at every delivery on the address connected to, since DNS can change.
    """
    try:
        return egress.check_url(url)
    except egress.EgressRefused as exc:
        raise InvalidWebhookUrl(f"The webhook URL is refused: {exc}") from None


def _check_event_types(event_types: list[str] | None) -> list[str]:
    types = [str(t).strip() for t in (event_types or ["*"]) if str(t).strip()]
    return types or ["*"]


@transaction.atomic
def create_endpoint(
    *, tenant: Tenant, url: str, event_types: list[str] | None = None, secret: str = "", description: str = "",
    active: bool = True,
) -> WebhookEndpoint:
    endpoint = WebhookEndpoint(
        tenant=tenant, url=check_url(url), event_types=_check_event_types(event_types), description=description,
        active=active,
    )
    if secret:
        endpoint.secret = secret
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def update_endpoint(*, endpoint: WebhookEndpoint, **changes) -> WebhookEndpoint:
    if "url" in changes:
        changes["url"] = check_url(changes["url"])
    if "event_types" in changes:
        changes["event_types"] = _check_event_types(changes["event_types"])
    for name, value in changes.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


@transaction.atomic
def delete_endpoint(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


# --- fan-out (an event subscriber, registered in MessagingConfig.ready()) -------------------------------------


def ordering_key_for(event: dict) -> str:
    data = event.get("data") or {}
    conversation = data.get("conversation_id")
    if conversation:
        return f"conversation:{conversation}"
    if event.get("type", "").startswith("session."):
        return "session"
    return ""


# Most tenants have no endpoint, and every event asked: the answer is kept per process, and any
# save or delete of an endpoint drops it everywhere (MessagingConfig.ready(), forget_endpoints).
_endpoints = StampedCache("wap:webhook-endpoints:version", ttl_setting="WEBHOOK_ENDPOINT_CACHE_SECONDS",
                          size_setting="WEBHOOK_ENDPOINT_CACHE_SIZE")


def active_endpoints(tenant_id: int) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """(endpoint id, event types) of the tenant's active endpoints."""
    return _endpoints.get(tenant_id, lambda: tuple(
        (endpoint_id, tuple(event_types)) for endpoint_id, event_types in
        WebhookEndpoint.objects.filter(tenant_id=tenant_id, active=True).values_list("pk", "event_types")))


def forget_endpoints(sender, instance, **kwargs) -> None:
    """A save or delete of an endpoint (created, changed, switched off, gone, from any path)."""
    _endpoints.forget_on_commit()


def forget_kept_endpoints() -> None:
    """Every process reads the endpoints again: after a change no signal announced (QuerySet.update)."""
    _endpoints.forget_all()


def fan_out_event(event: dict) -> None:
    """Create one delivery per subscribed endpoint of the event's tenant, then enqueue them.

    Runs after the publishing transaction committed (publish_event defers it).
    The unique (endpoint, event_id) constraint makes a repeated fan-out harmless.
    """
    tenant_id = event.get("tenant")
    if not tenant_id:
        return
    endpoint_ids = [endpoint_id for endpoint_id, event_types in active_endpoints(tenant_id)
                    if WebhookEndpoint.types_want(event_types, event["type"])]
    if not endpoint_ids:
        return
    key = ordering_key_for(event)
    now = timezone.now()
    with transaction.atomic():
        for endpoint_id in endpoint_ids:
            delivery, created = WebhookDelivery.objects.get_or_create(
                endpoint_id=endpoint_id, event_id=event["id"],
                defaults={"event_type": event["type"], "payload": event, "ordering_key": key, "next_attempt_at": now},
            )
            if created:
                _enqueue(delivery.pk)


def _enqueue(delivery_id: int, delay: float = 0) -> None:
    enqueue_on_commit("messaging.jobs.deliver_webhook", delivery_id, queue="webhooks", delay=delay)


# --- delivery ---------------------------------------------------------------------


def _earlier_open_sibling():
    return WebhookDelivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        ordering_key=OuterRef("ordering_key"),
        pk__lt=OuterRef("pk"),
        status__in=WebhookDelivery.OPEN,
    ).exclude(ordering_key="")


def _claim(delivery_id: int) -> WebhookDelivery | None:
    """Take the delivery for one attempt; its lease is next_attempt_at, so a retry waiting
    and a job holding the delivery both read as "not due"."""
    # A suspended tenant's deliveries are not claimable: they stay due until its reactivation.
    claimable = WebhookDelivery.objects.select_related("endpoint").filter(
        status__in=WebhookDelivery.OPEN, endpoint__tenant__status=Tenant.Status.ACTIVE)
    return leases.claim(claimable, pk=delivery_id, lease_field="next_attempt_at",
                        lease_seconds=settings.WEBHOOK_DELIVERY_LEASE_SECONDS, take=_start_attempt)


def _start_attempt(delivery: WebhookDelivery, now: datetime) -> list[str] | None:
    if delivery.next_attempt_at and delivery.next_attempt_at > now + timedelta(seconds=1):
        return None  # not due (a retry waiting, or another job holds its lease)
    if delivery.ordering_key and WebhookDelivery.objects.filter(pk=delivery.pk).filter(
            Exists(_earlier_open_sibling())).exists():
        return None  # an earlier event of this conversation goes first; it wakes us when done
    if not delivery.endpoint.active:
        _finish(delivery, status=WebhookDelivery.Status.DEAD, error="endpoint disabled")
        return None
    delivery.attempts += 1
    delivery.last_attempt_at = now
    return ["attempts", "last_attempt_at"]


def _finish(delivery: WebhookDelivery, *, status: str, code: int | None = None, error: str = "") -> None:
    delivery.status = status
    delivery.last_status_code = code
    delivery.last_error = error[:2000]
    delivery.next_attempt_at = None
    delivery.completed_at = timezone.now()
    delivery.save(update_fields=["status", "last_status_code", "last_error", "next_attempt_at", "completed_at"])
    if delivery.ordering_key:
        _wake_next(delivery)


def _wake_next(delivery: WebhookDelivery) -> None:
    following = (
        WebhookDelivery.objects.filter(
            endpoint_id=delivery.endpoint_id, ordering_key=delivery.ordering_key, pk__gt=delivery.pk,
            status__in=WebhookDelivery.OPEN,
        ).order_by("pk").values_list("pk", "next_attempt_at").first()
    )
    if following:
        pk, due = following
        _enqueue(pk, delay=max(0.0, (due - timezone.now()).total_seconds()) if due else 0)


RECEIVER_BACK_EVERY_SECONDS = 60


def _receiver_is_back(endpoint_id: int) -> None:
    """A delivery that had failed went through: its endpoint's waiting retries go now.

    At most once a minute per endpoint (a flaky receiver is not hit with every
    waiting retry at each success), and not the retries of a 429: the receiver
    asked for those to slow down.
    """
    try:
        if not get_redis().set(f"wap:webhooks:back:{endpoint_id}", 1, nx=True, ex=RECEIVER_BACK_EVERY_SECONDS):
            return
    except RedisError:
        return  # the backoff still holds; this only shortens it
    retry_waiting_now(endpoint_id, keep_rate_limited=True)


def retry_waiting_now(endpoint_id: int, *, keep_rate_limited: bool = False) -> int:
    """The endpoint's waiting retries are due now; returns how many were brought forward.

    Run when a delivery that had failed goes through (the receiver is back), and
    when the tenant says so (`POST /api/v1/webhooks/{id}/retry`). Without it, after
    an outage each waiting retry keeps its backoff: after ten minutes down, a
    conversation's events could wait several more minutes for a receiver that is
    already answering. Only retries due later than any lease can end are brought
    forward, so no delivery in flight is started twice.
    """
    now = timezone.now()
    past_any_lease = now + timedelta(seconds=settings.WEBHOOK_DELIVERY_LEASE_SECONDS + 1)
    waiting = WebhookDelivery.objects.filter(
        endpoint_id=endpoint_id, status__in=WebhookDelivery.OPEN, next_attempt_at__gt=past_any_lease)
    if keep_rate_limited:
        waiting = waiting.exclude(last_status_code=429)
    moved = list(waiting.values_list("pk", flat=True))
    brought_forward = WebhookDelivery.objects.filter(pk__in=moved, next_attempt_at__gt=past_any_lease) \
        .update(next_attempt_at=now)
    if brought_forward:
        logger.info("webhook endpoint %s: %d waiting retries are due now", endpoint_id, brought_forward)
        # Only the rows moved here: others of the endpoint that are due have jobs of their own.
        _requeue_heads(WebhookDelivery.objects.filter(pk__in=moved, next_attempt_at__lte=now))
    return brought_forward


def _http() -> httpx.Client:
    global _client
    if _client is None:
        # Redirects are not followed: a 3xx is the receiver's answer (permanent, see deliver_webhook).
        _client = egress.guarded_client(follow_redirects=False, headers={"User-Agent": USER_AGENT})
    return _client


def deliver_webhook(*, delivery_id: int) -> str:
    """One attempt of one delivery. Returns the outcome (for logs and tests)."""
    delivery = _claim(delivery_id)
    if delivery is None:
        return "nothing to do"
    body, headers = signed_request(delivery)
    code: int | None = None
    try:
        response = _http().post(
            delivery.endpoint.url, content=body, headers=headers,
            timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS, connect=min(5.0, settings.WEBHOOK_TIMEOUT_SECONDS)),
        )
        code = response.status_code
        error = "" if code < 300 else f"HTTP {code}: {response.text[:500]}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().select_related("endpoint").get(pk=delivery.pk)
        if delivery.status not in WebhookDelivery.OPEN:
            return "finished meanwhile"  # another attempt (a lease that ran out) settled it first
        if code is not None and 200 <= code < 300:
            _finish(delivery, status=WebhookDelivery.Status.SUCCEEDED, code=code)
            if delivery.attempts > 1:
                transaction.on_commit(partial(_receiver_is_back, delivery.endpoint_id))
            return "succeeded"
        permanent = code is not None and 300 <= code < 500 and code not in RETRYABLE_4XX
        delay = backoff_delay(delivery.attempts, base=settings.WEBHOOK_RETRY_BASE_SECONDS,
                              cap=settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS)
        window_ends = delivery.created_at + timedelta(seconds=settings.WEBHOOK_RETRY_WINDOW_SECONDS)
        if permanent or timezone.now() + timedelta(seconds=delay) > window_ends:
            _finish(delivery, status=WebhookDelivery.Status.DEAD, code=code, error=error)
            logger.warning("webhook delivery %s dead after %d attempts: %s", delivery.pk, delivery.attempts, error)
            return "dead"
        delivery.status = WebhookDelivery.Status.FAILED
        delivery.last_status_code = code
        delivery.last_error = error[:2000]
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        delivery.save(update_fields=["status", "last_status_code", "last_error", "next_attempt_at"])
        _enqueue(delivery.pk, delay=delay)
        return f"retry in {delay:.1f}s"


@transaction.atomic
def replay_delivery(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a finished delivery again: same event id and body (receivers dedupe on the id)."""
    delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
    if delivery.status in WebhookDelivery.OPEN:
        return delivery  # already on its way
    now = timezone.now()
    delivery.status = WebhookDelivery.Status.PENDING
    delivery.next_attempt_at = now
    delivery.replayed_at = now
    delivery.completed_at = None
    # A fresh retry window from the replay.
    delivery.created_at = now
    delivery.attempts = 0
    delivery.save(update_fields=["status", "next_attempt_at", "replayed_at", "completed_at", "created_at", "attempts"])
    _enqueue(delivery.pk)
    return delivery


def replay_dead(*, endpoint_id: int | None = None, since=None, tenant: Tenant | None = None) -> int:
    deliveries = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).order_by("pk")
    if endpoint_id:
        deliveries = deliveries.filter(endpoint_id=endpoint_id)
    if tenant is not None:
        deliveries = deliveries.filter(endpoint__tenant=tenant)
    if since is not None:
        deliveries = deliveries.filter(created_at__gte=since)
    count = 0
    for delivery in deliveries.iterator():
        replay_delivery(delivery=delivery)
        count += 1
    return count


def requeue_due_deliveries() -> int:
    """The sweeper's part: enqueue open deliveries that are due, heads of their order only."""

    now = timezone.now()
    stuck_before = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    return _requeue_heads(WebhookDelivery.objects.filter(next_attempt_at__lte=stuck_before))


def requeue_deliveries_due_by(moment) -> int:
    """After Redis lost its data (messaging.services.recovery): every open delivery due by `moment`."""
    return _requeue_heads(WebhookDelivery.objects.filter(next_attempt_at__lte=moment))


def requeue_tenant_deliveries(*, tenant_id: int) -> int:
    """After a reactivation: the tenant's open deliveries that came due while it was suspended."""
    return _requeue_heads(WebhookDelivery.objects.filter(endpoint__tenant_id=tenant_id,
                                                         next_attempt_at__lte=timezone.now()))


def _requeue_heads(deliveries) -> int:
    due = list(
        deliveries.filter(status__in=WebhookDelivery.OPEN, endpoint__tenant__status=Tenant.Status.ACTIVE)
        .exclude(Exists(_earlier_open_sibling()))
        .order_by("pk")
        .values_list("pk", flat=True)[: settings.SWEEP_BATCH_SIZE]
    )
    return leases.requeue(job="messaging.jobs.deliver_webhook", queue="webhooks", ids=due,
                          due_now=WebhookDelivery.objects.filter(status__in=WebhookDelivery.OPEN))

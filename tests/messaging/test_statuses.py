"""Statuses never go backwards; statuses that beat their message are kept and applied; costs."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from messaging import services, webhooks_out
from messaging.models import Message, PendingStatus, WebhookDelivery
from messaging.pacing import reserve_send
from messaging.selectors import message_cost_for_tenant
from messaging.services.statuses import record_sent_many
from pooling import services as pooling
from tests.conftest import client_for
from tests.factories import TenantFactory
from waplatform.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(db):
    tenant = TenantFactory()
    pooling.start_session(tenant=tenant)
    return tenant


def sent_message(tenant, provider_id: str) -> Message:
    message = services.send_message(tenant=tenant, to="16505551234", type="text", text="x").message
    services.record_sent(message_id=message.pk, provider_message_id=provider_id)
    return Message.objects.get(pk=message.pk)


def apply(tenant, provider_id, status, **kwargs):
    return services.apply_status(tenant_id=tenant.pk, provider_message_id=provider_id, status=status, **kwargs)


def test_status_only_moves_up(tenant):
    sent_message(tenant, "wamid.A")

    outcomes = [apply(tenant, "wamid.A", s) for s in ("read", "delivered", "sent", "played")]

    assert outcomes == ["applied", "stale", "stale", "applied"]
    assert Message.objects.get(provider_message_id="wamid.A").status == "played"


def test_a_batch_is_recorded_sent_each_with_its_own_id_and_time_except_a_message_already_failed(tenant):
    queued = [services.send_message(tenant=tenant, to=f"1650555{i:04d}", type="text", text="x").message
              for i in range(3)]
    services.fail_message(message=queued[1], code="131026", reason="Message undeliverable")
    now = timezone.now()
    taken = [(m.pk, f"wamid.B{i}", now - timedelta(seconds=3 - i)) for i, m in enumerate(queued)]

    recorded = record_sent_many(sent=taken, slot_id=None)

    assert recorded == [queued[0].pk, queued[2].pk]
    rows = {m.pk: m for m in Message.objects.filter(pk__in=[m.pk for m in queued])}
    for i in (0, 2):
        assert (rows[queued[i].pk].status, rows[queued[i].pk].provider_message_id, rows[queued[i].pk].sent_at) == \
            ("sent", f"wamid.B{i}", taken[i][2])
    assert (rows[queued[1].pk].status, rows[queued[1].pk].provider_message_id) == ("failed", "")
    announced = OutboxEvent.objects.filter(type="message.sent").values_list("envelope", flat=True)
    assert sorted((e["data"]["id"], e["data"]["provider_message_id"]) for e in announced) == \
        [(queued[0].pk, "wamid.B0"), (queued[2].pk, "wamid.B2")]


def test_failed_is_terminal_and_carries_code_and_reason(tenant):
    sent_message(tenant, "wamid.F")

    apply(tenant, "wamid.F", "failed", error_code="131026", error_reason="Message undeliverable")
    late = apply(tenant, "wamid.F", "read")

    message = Message.objects.get(provider_message_id="wamid.F")
    assert (late, message.status, message.error_code, message.error_reason) == \
        ("stale", "failed", "131026", "Message undeliverable")


def test_a_failed_message_event_carries_the_message_exactly_as_get_returns_it(
    tenant, django_capture_on_commit_callbacks
):
    # given an endpoint for failures, and a sent message
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url="http://127.0.0.1:9/hook",
                                            event_types=["message.failed"])
    message = sent_message(tenant, "wamid.PRICED")

    # when it fails, priced
    with django_capture_on_commit_callbacks(execute=True):
        apply(tenant, "wamid.PRICED", "failed", error_code="131026", error_reason="Message undeliverable",
              pricing={"category": "marketing", "pricing_model": "CBP", "type": "regular"})

    # then the webhook's data is the API's answer, error and pricing included
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event_type="message.failed")
    answer = client_for(tenant).get(f"/api/v1/messages/{message.pk}").json()
    assert answer["error"] == {"code": "131026", "reason": "Message undeliverable"}
    assert answer["pricing"] == {"category": "marketing", "pricing_model": "CBP", "type": "regular"}
    assert delivery.payload["data"] == answer


def test_a_status_that_arrives_first_is_applied_when_the_message_appears(tenant):
    assert apply(tenant, "wamid.EARLY", "delivered") == "pending"
    assert apply(tenant, "wamid.EARLY", "read") == "pending"

    message = sent_message(tenant, "wamid.EARLY")
    applied = services.apply_pending_statuses(tenant_id=tenant.pk, provider_message_ids=["wamid.EARLY"])

    message.refresh_from_db()
    assert (applied, message.status) == (2, "read")
    assert not PendingStatus.objects.exists()


def test_the_sweeper_applies_late_matches_and_expires_old_pending_statuses(tenant, settings):
    apply(tenant, "wamid.LATE", "delivered")
    apply(tenant, "wamid.NEVER", "read")
    message = sent_message(tenant, "wamid.LATE")  # recorded without the post-commit check
    PendingStatus.objects.filter(provider_message_id="wamid.NEVER").update(
        created_at=timezone.now() - timedelta(seconds=settings.PENDING_STATUS_TTL_SECONDS + 1))

    report = services.sweep()

    message.refresh_from_db()
    assert (report.pending_applied, report.pending_expired, message.status) == (1, 1, "delivered")
    assert not PendingStatus.objects.exists()


def test_statuses_of_another_tenant_never_touch_a_message(tenant):
    sent_message(tenant, "wamid.MINE")
    other = TenantFactory()

    assert apply(other, "wamid.MINE", "read") == "pending"
    assert Message.objects.get(provider_message_id="wamid.MINE").status == "sent"


def test_message_cost_by_pricing_category(tenant, settings):
    for n, (category, pricing_type) in enumerate([("marketing", "regular"), ("marketing", "regular"),
                                                  ("utility", "regular"), ("service", "free_customer_service"),
                                                  ("authentication", "regular")]):
        sent_message(tenant, f"wamid.C{n}")
        apply(tenant, f"wamid.C{n}", "delivered",
              pricing={"category": category, "pricing_model": "PMP", "type": pricing_type})
    sent_message(tenant, "wamid.BRIDGE")  # a WhatsApp Web message: no pricing

    cost = message_cost_for_tenant(tenant=tenant, since=timezone.now() - timedelta(days=1))

    assert cost == Decimal("0.025") * 2 + Decimal("0.004") + Decimal("0.0035")
    assert message_cost_for_tenant(tenant=tenant, since=timezone.now() + timedelta(minutes=1)) == 0


def test_pacing_books_one_slot_per_send_on_the_number_and_the_pair(settings):
    settings.PACING_BURST = 3
    settings.PACING_JITTER_SECONDS = 0
    settings.PAIR_BURST = 100

    waits = [reserve_send(number_key="n1", recipient=f"r{i}", dialect="waha", tier_rate=2.0).wait_seconds
             for i in range(5)]
    cloud = [reserve_send(number_key="n2", recipient="r", dialect="cloud", tier_rate=0.1).wait_seconds
             for _ in range(3)]

    assert waits[:3] == [0, 0, 0]
    assert 0.4 <= waits[3] <= 0.55 and 0.9 <= waits[4] <= 1.05  # 2/s after the burst
    # Cloud numbers run at 80/s, not the tier's 0.1/s, and with no burst: 1/80 s apart.
    assert cloud[0] == 0 and cloud[1] == pytest.approx(1 / 80, abs=0.005) and cloud[2] == pytest.approx(2 / 80, abs=0.005)


def test_pacing_waits_for_the_slower_of_the_number_and_the_recipient_pair(settings):
    settings.PACING_BURST = 1
    settings.PACING_JITTER_SECONDS = 0
    settings.PAIR_BURST = 1
    settings.PAIR_INTERVAL_SECONDS = 2.0

    # The number allows 100/s; the same recipient only one message per 2 s.
    same = [reserve_send(number_key="n3", recipient="r", dialect="waha", tier_rate=100.0).wait_seconds
            for _ in range(3)]
    # Another recipient is not held by the first one's pair, only by the number's 1/100 s.
    other = reserve_send(number_key="n3", recipient="someone-else", dialect="waha", tier_rate=100.0).wait_seconds

    assert same[0] == 0
    assert same[1] == pytest.approx(2.0, abs=0.05) and same[2] == pytest.approx(4.0, abs=0.05)
    assert other == pytest.approx(3 / 100, abs=0.02)

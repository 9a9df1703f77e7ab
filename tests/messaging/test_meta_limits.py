"""What Meta's account-level refusals do to a tenant's sends (Cloud API numbers on a sandbox)."""

import httpx
import pytest

from messaging.models import Message
from messaging.services import tenant_send_pause_seconds
from operations.alerts import evaluate_alerts
from operations.models import Alert
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.messaging.conftest import start_cloud_session, work, work_until
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def cloud_tenant(transactional_db, hook_relay, spawn_sandbox):
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05)
    tenant = TenantFactory()
    start_cloud_session(tenant, sandbox)
    return tenant, sandbox


def fault(sandbox, code: int) -> None:
    httpx.post(f"{sandbox.base_url}/sandbox/faults", json={"error_status": 400, "error_count": 1, "error_code": code},
               headers={"X-Api-Key": sandbox.api_key}, timeout=5).raise_for_status()


def send(tenant, to="16505551234"):
    response = client_for(tenant).post("/api/v1/messages", {"to": to, "text": {"body": "hi"}}, format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_the_spam_limit_pauses_the_tenant_keeps_its_messages_and_alerts(cloud_tenant, settings):
    tenant, sandbox = cloud_tenant
    settings.SPAM_PAUSE_SECONDS = 600
    fault(sandbox, 131048)

    first = send(tenant)
    work()
    second = send(tenant, to="16505559999")
    work()

    statuses = dict(Message.objects.filter(pk__in=[first, second]).values_list("pk", "status"))
    assert statuses == {first: "queued", second: "queued"}  # kept, not failed
    assert tenant_send_pause_seconds(tenant_id=tenant.pk) > 500
    alert = Alert.objects.get(kind="spam_rate_limit", key=tenant.slug, resolved_at__isnull=True)
    assert "paused for 10 min" in alert.message

    # when the pause ends
    get_redis().delete(f"wap:send-paused:{tenant.pk}")
    Message.objects.filter(pk__in=[first, second]).update(next_attempt_at=None, paced_until=None)
    from messaging.services import sweep

    settings.SWEEP_STUCK_AFTER_SECONDS = 0
    sweep()
    work_until(lambda: not Message.objects.filter(pk__in=[first, second], status="queued").exists())
    evaluate_alerts()

    assert set(Message.objects.filter(pk__in=[first, second]).values_list("status", flat=True)) <= {
        "sent", "delivered", "read"}
    alert.refresh_from_db()
    assert alert.resolved_at is not None


def test_outside_the_24_hour_window_the_failure_says_to_send_a_template(cloud_tenant):
    tenant, sandbox = cloud_tenant
    fault(sandbox, 131047)

    message_id = send(tenant)
    message = work_until(lambda: (m := Message.objects.get(pk=message_id)).status == "failed" and m)

    assert message.error_code == "131047"
    assert 'template' in message.error_reason and "24 h" in message.error_reason

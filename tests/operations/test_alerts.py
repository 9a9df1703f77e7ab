import pytest
from django.test import override_settings

from operations.alerts import evaluate_alerts
from operations.models import Alert
from tests.factories import SlotFactory, tier
from tests.bridges.conftest import spawn_sandbox  # noqa: F401  (fixture)
from waplatform.queues import enqueue

pytestmark = pytest.mark.django_db


@override_settings(ALERT_QUEUE_WAITING=2)
def test_a_queue_over_its_threshold_opens_an_alert_and_it_resolves_when_drained():
    for _ in range(3):
        enqueue("waplatform.jobs.heartbeat", queue="ai")

    opened = evaluate_alerts()
    alert = Alert.objects.get(kind="queue_backlog", key="ai")
    from waplatform.queues import get_queue

    get_queue("ai").empty()
    resolved = evaluate_alerts()

    assert any("firing queue_backlog ai" in line for line in opened)
    assert "resolved queue_backlog ai" in resolved
    alert.refresh_from_db()
    assert alert.resolved_at is not None


@override_settings(ALERT_POOL_UTILISATION=0.9)
def test_a_pool_above_90_percent_opens_an_alert():
    SlotFactory(used=10)

    evaluate_alerts()

    assert Alert.objects.filter(kind="pool_busy", key="standard", resolved_at__isnull=True).exists()


@override_settings(ALERT_POOL_UTILISATION=0.9)
def test_a_full_dedicated_pool_is_not_busy():
    # given enterprise slots, each full with its one tenant (as dedicated slots always are)
    SlotFactory(tier=tier("enterprise"), used=1)
    SlotFactory(tier=tier("enterprise"), used=1)

    evaluate_alerts()

    assert not Alert.objects.filter(kind="pool_busy", key="enterprise").exists()


@override_settings(ALERT_PROCESS_MEMORY_MB=1)
def test_a_platform_process_over_the_memory_threshold_opens_an_alert(spawn_sandbox):
    worker = spawn_sandbox()

    evaluate_alerts()

    alert = Alert.objects.get(kind="process_memory", key=str(worker.process.pid), resolved_at__isnull=True)
    assert "sandbox process" in alert.message and "limit 1 MB" in alert.message


def test_a_memory_alert_of_a_process_that_is_gone_resolves():
    from waplatform.alerts import raise_alert

    raise_alert(kind=Alert.Kind.PROCESS_MEMORY, key="999999999", message="workers process 999999999 uses 4000 MB")

    report = evaluate_alerts()

    assert "resolved process_memory 999999999" in report
    assert not Alert.objects.filter(kind="process_memory", key="999999999", resolved_at__isnull=True).exists()


def test_alert_kinds_are_known_in_code():
    from waplatform.alerts import raise_alert

    with pytest.raises(ValueError, match="unknown alert kind"):
        raise_alert(kind="not_a_kind", key="x", message="m")

    assert not Alert.objects.filter(kind="not_a_kind").exists()

"""The transactional outbox: an event commits with its change, and every subscriber gets it.

The race under test: the publisher commits, then dies (or a subscriber raises)
before the event reaches the subscribers. Before the outbox the event existed
only as an on_commit callback in that process and was gone with it.
"""

import os
import subprocess
import sys

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from messaging.models import WebhookDelivery
from messaging.webhooks_out import create_endpoint
from tests.processes import shared_database_url
from waplatform import outbox
from waplatform.events import (fan_out_by_relay, publish_event, publish_events, register_subscriber,
                               unregister_subscriber)
from waplatform.models import OutboxEvent

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Recorder:
    """A subscriber of the test's own: records what it is handed, and can refuse a number of times."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.refuse: dict[str, int] = {}

    def __call__(self, event: dict) -> None:
        if self.refuse.get(event["id"], 0) > 0:
            self.refuse[event["id"]] -= 1
            raise ConnectionError("receiver away")
        self.seen.append(event["id"])


@pytest.fixture
def recorder():
    recorder = Recorder()
    register_subscriber("test-recorder", recorder)
    yield recorder
    unregister_subscriber("test-recorder")


def test_an_event_commits_with_its_change_and_vanishes_with_its_rollback(transactional_db, tenant, recorder):
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_event(tenant_id=tenant.pk, type="tenant.updated", data={"n": 1})
        raise RuntimeError("the change fails")
    kept = publish_event(tenant_id=tenant.pk, type="tenant.updated", data={"n": 2})

    assert list(OutboxEvent.objects.values_list("envelope__data__n", flat=True)) == [2]
    assert recorder.seen == [kept["id"]]
    assert OutboxEvent.objects.get().delivered_at is not None


def test_subscribers_hear_nothing_before_commit(transactional_db, tenant, recorder):
    with transaction.atomic():
        publish_event(tenant_id=tenant.pk, type="tenant.updated", data={})
        assert recorder.seen == []
    assert len(recorder.seen) == 1


@pytest.mark.integration
def test_a_publisher_killed_between_commit_and_fan_out_loses_no_event(transactional_db, tenant, settings):
    """The publishing process exits right after its commit, before any subscriber ran;
    the relay hands the event over, and the tenant's webhook gets its delivery."""
    settings.EGRESS_ALLOW_PRIVATE_URLS = True
    endpoint = create_endpoint(tenant=tenant, url="http://127.0.0.1:9/in", event_types=["*"])
    script = (
        "import os\n"
        "from django.db import transaction\n"
        "from waplatform.events import publish_event\n"
        "with transaction.atomic():\n"
        "    transaction.on_commit(lambda: os._exit(9))\n"  # runs before the fan-out hook
        f"    publish_event(tenant_id={tenant.pk}, type='message.received', data={{'conversation_id': 7}})\n"
    )
    env = {**os.environ, "DATABASE_URL": shared_database_url(), "OUTBOX_RELAY_GRACE_SECONDS": "0"}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 9, result.stderr[-2000:]
    row = OutboxEvent.objects.get()
    assert row.delivered_at is None and "messaging.webhooks" in row.pending
    assert not WebhookDelivery.objects.exists()

    report = outbox.relay()

    assert report.delivered == 1
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.event_id == str(row.event_id)
    row.refresh_from_db()
    assert row.delivered_at is not None and row.pending == []


def test_a_refused_event_is_retried_and_never_overtaken_in_its_conversation(transactional_db, tenant, settings,
                                                                          recorder):
    settings.OUTBOX_RETRY_BASE_SECONDS = 0
    settings.OUTBOX_RETRY_MAX_DELAY_SECONDS = 0
    with transaction.atomic():
        first = publish_event(tenant_id=tenant.pk, type="message.received", data={"conversation_id": 1})
        recorder.refuse[first["id"]] = 1
    second = publish_event(tenant_id=tenant.pk, type="message.received", data={"conversation_id": 1})
    elsewhere = publish_event(tenant_id=tenant.pk, type="message.received", data={"conversation_id": 2})

    # The second event of conversation 1 waits for the first; conversation 2 does not.
    assert recorder.seen == [elsewhere["id"]]
    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 2

    outbox.relay()

    assert recorder.seen == [elsewhere["id"], first["id"], second["id"]]
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_an_event_left_to_the_relay_is_not_overtaken_by_a_later_one_of_its_conversation(
        transactional_db, tenant, settings, recorder):
    # A batch of sends publishes `message.sent` for the relay; the bridge's ack then
    # commits `message.status` on a web process's fast path before the relay ran.
    settings.OUTBOX_RETRY_BASE_SECONDS = 0
    settings.OUTBOX_RETRY_MAX_DELAY_SECONDS = 0
    with fan_out_by_relay():
        sent = publish_event(tenant_id=tenant.pk, type="message.sent", data={"conversation_id": 1})
    delivered = publish_event(tenant_id=tenant.pk, type="message.status", data={"conversation_id": 1})
    elsewhere = publish_event(tenant_id=tenant.pk, type="message.received", data={"conversation_id": 2})

    assert recorder.seen == [elsewhere["id"]]

    outbox.relay()

    assert recorder.seen == [elsewhere["id"], sent["id"], delivered["id"]]


def test_the_relay_marks_a_pass_of_delivered_events_in_one_write(transactional_db, tenant, recorder):
    with fan_out_by_relay():
        published = [publish_event(tenant_id=tenant.pk, type="message.status", data={"conversation_id": n % 3})
                     for n in range(30)]

    with CaptureQueriesContext(connection) as queries:
        report = outbox.relay()

    # the relay's own statements: one read of the pass, one write for all it delivered (31
    # when each event had its own); what the subscribers read is theirs
    assert len([q for q in queries.captured_queries if "waplatform_outboxevent" in q["sql"]]) == 2

    assert report.delivered == 30 and recorder.seen == [event["id"] for event in published]
    assert set(OutboxEvent.objects.values_list("attempts", flat=True)) == {1}
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_events_published_together_are_handed_over_in_order_and_marked_delivered(transactional_db, tenant, recorder):
    events = publish_events([(tenant.pk, "message.received", {"conversation_id": 1}),
                             (tenant.pk, "conversation.updated", {"conversation_id": 1}),
                             (tenant.pk, "message.received", {"conversation_id": 2})])

    assert recorder.seen == [event["id"] for event in events]
    assert list(OutboxEvent.objects.order_by("pk").values_list("attempts", "pending")) == [(1, [])] * 3
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_a_refused_event_holds_back_the_later_ones_of_its_conversation_published_with_it(
        transactional_db, tenant, settings, recorder):
    # Intake publishes message.received and conversation.updated together: the second
    # must not reach a subscriber that has not had the first.
    settings.OUTBOX_RETRY_BASE_SECONDS = 0
    settings.OUTBOX_RETRY_MAX_DELAY_SECONDS = 0
    with transaction.atomic():
        first, second, elsewhere = publish_events([(tenant.pk, "message.received", {"conversation_id": 1}),
                                                   (tenant.pk, "conversation.updated", {"conversation_id": 1}),
                                                   (tenant.pk, "message.received", {"conversation_id": 2})])
        recorder.refuse[first["id"]] = 1

    assert recorder.seen == [elsewhere["id"]]
    assert OutboxEvent.objects.filter(delivered_at__isnull=True).count() == 2

    outbox.relay()

    assert recorder.seen == [elsewhere["id"], first["id"], second["id"]]
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_delivered_events_are_purged_after_the_retention(transactional_db, tenant, settings):
    publish_event(tenant_id=tenant.pk, type="tenant.updated", data={})
    settings.OUTBOX_RETENTION_HOURS = 1
    assert outbox.purge_delivered() == 0
    settings.OUTBOX_RETENTION_HOURS = 0
    assert outbox.purge_delivered() == 1

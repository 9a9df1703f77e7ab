"""Firestore down: sends and inbound messages go on, mirror jobs retry with
backoff, the last attempt dead-letters, and the mirror catches up when
Firestore is back. The emulator here is the test's own, so stopping it
leaves the shared one alone."""

import time

import django_rq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from messaging.models import Message
from mirror import client as mirror_client
from mirror import documents
from mirror import jobs as mirror_jobs
from mirror.models import Backlog, DeadLetter, MirrorStatus, SyncCheckpoint
from tests.factories import OperatorFactory, TenantFactory
from tests.messaging.conftest import work, work_until
from tests.mirror.conftest import Emulator, use_emulator
from tests.waiting import wait_until
from waplatform.events import publish_event

pytestmark = pytest.mark.integration


def answers(mirror) -> bool:
    try:
        mirror.doc("probe/ready")
    except Exception:  # noqa: BLE001 - any gRPC error means not up yet
        return False
    return True


@pytest.fixture
def own_emulator(settings, monkeypatch):
    emulator = Emulator().start()
    view = use_emulator(settings, monkeypatch, emulator)
    yield emulator, view
    emulator.stop()
    view.db.close()


def test_an_unreachable_firestore_makes_jobs_retry_while_sends_succeed_then_catches_up(own_emulator, platform,
                                                                                      settings):
    emulator, mirror = own_emulator
    settings.FIRESTORE_MIRROR_MAX_ATTEMPTS = 1000  # this test is about retrying, not giving up

    # given Firestore goes away
    emulator.stop()

    # when the tenant sends a message
    started = time.monotonic()
    response = platform.api.post("/api/v1/messages", {"to": "16505550002", "type": "text",
                                                      "text": {"body": "Still works"}}, format="json")
    accepted_in = time.monotonic() - started
    message_id = response.json()["id"]

    # then the send is accepted at once and goes all the way to read
    assert response.status_code == 202 and accepted_in < 2
    work_until(lambda: Message.objects.get(pk=message_id).status == "read")

    # and the mirror jobs failed, are counted, and are waiting to retry (none dead)
    status = work_until(lambda: MirrorStatus.objects.filter(tenant=platform.tenant,
                                                            consecutive_failures__gte=2).first())
    assert "ServiceUnavailable" in status.last_error
    assert not DeadLetter.objects.exists()

    # when Firestore is back (empty: the emulator keeps nothing)
    emulator.start()

    # then the retries write the message as the database has it now
    message = Message.objects.get(pk=message_id)
    path = documents.message_path(message.tenant_id, message.conversation_id, message.pk)
    doc = wait_until(lambda: (d := mirror.doc(path)) and d["status"] == "read" and d, step=work, timeout=30)
    assert doc["text"] == "Still works"
    conversation = mirror.doc(documents.conversation_path(message.tenant_id, message.conversation_id))
    assert conversation["last_message"]["id"] == message.pk
    status.refresh_from_db()
    assert status.consecutive_failures == 0 and status.last_synced_at > status.last_error_at


def test_the_last_attempt_dead_letters_and_the_admin_retries_it(own_emulator, transactional_db, settings, client):
    emulator, mirror = own_emulator
    settings.FIRESTORE_MIRROR_MAX_ATTEMPTS = 2
    tenant = TenantFactory()
    emulator.stop()

    # when the tenant changes while Firestore is down, and both attempts fail
    publish_event(tenant_id=tenant.pk, type="tenant.updated", data={})
    dead = wait_until(lambda: DeadLetter.objects.filter(tenant=tenant).first(), step=lambda: work("maintenance"))

    # then the dead letter names the object, the attempts and the error
    assert (dead.kind, dead.object_id, dead.attempts, dead.event_type) == ("tenant", tenant.pk, 2, "tenant.updated")
    assert "ServiceUnavailable" in dead.error and dead.resolved_at is None

    # when Firestore is back and an operator retries it from the admin
    emulator.start()
    # gRPC's reconnect backoff on the old channel would outlast the 2 attempts this test allows;
    # a restarted worker process gets a fresh channel the same way.
    wait_until(lambda: answers(mirror))
    mirror_client.reset_client()
    client.force_login(OperatorFactory())
    changelist = reverse("admin:mirror_deadletter_changelist")
    assert client.get(changelist).status_code == 200
    response = client.post(changelist, {"action": "retry", "_selected_action": [dead.pk]})
    assert response.status_code == 302
    # then the document is written and the letter resolved
    doc = wait_until(lambda: mirror.doc(f"tenants/{tenant.pk}"), step=lambda: work("maintenance"))
    assert doc["name"] == tenant.name
    dead.refresh_from_db()
    assert dead.retried_at is not None and dead.resolved_at is not None
    assert client.get(reverse("admin:mirror_mirrorstatus_changelist")).status_code == 200


def test_a_refused_enqueue_is_kept_in_the_backlog_and_the_sweep_catches_up(mirror, transactional_db, settings):
    # given the maintenance queue refuses new jobs (as when Redis is down or the queue is full)
    tenant = TenantFactory()
    settings.QUEUE_MAX_WAITING = 0

    # when the tenant changes, the event is still published and nothing raises
    publish_event(tenant_id=tenant.pk, type="tenant.updated", data={})

    # then the object waits in the backlog
    assert list(Backlog.objects.values_list("kind", "object_id")) == [("tenant", tenant.pk)]

    # when the queue takes jobs again and the periodic sweep runs (as rq's cron runs it)
    settings.QUEUE_MAX_WAITING = 1000
    django_rq.get_queue("maintenance").enqueue(mirror_jobs.sweep_backlog)
    work("maintenance")

    # then the document is written and the backlog is empty
    assert mirror.doc(f"tenants/{tenant.pk}")["name"] == tenant.name
    assert not Backlog.objects.exists()


def test_an_interrupted_firestore_sync_resumes_from_its_checkpoint(own_emulator, transactional_db, capsys):
    emulator, mirror = own_emulator
    tenant = TenantFactory()

    # given a sync that Firestore cut short
    emulator.stop()
    with pytest.raises(CommandError, match="run the command again to resume"):
        call_command("firestore_sync", "--tenant", tenant.slug, "--no-progress", "--retry-for", "0")
    assert SyncCheckpoint.objects.get(tenant=tenant).finished_at is None

    # when it runs again with Firestore back
    emulator.start()
    call_command("firestore_sync", "--tenant", tenant.slug, "--no-progress")

    # then it resumed the same checkpoint and finished it
    assert f"{tenant.slug}: 1 documents written (resumed)" in capsys.readouterr().out
    assert SyncCheckpoint.objects.get(tenant=tenant).finished_at is not None
    assert mirror.doc(f"tenants/{tenant.pk}")["slug"] == tenant.slug

"""The mirror end to end: real sends and inbound messages through a sandbox
bridge, events on the bus, mirror jobs on a real Redis drained by real rq
workers, documents read back from a real gRPC Firestore (the emulator)."""

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from messaging import services as messaging
from messaging.models import Conversation, Message
from mirror import client as mirror_client
from mirror import documents
from mirror import services as mirror_services
from mirror.models import MirrorStatus
from tests.factories import TenantFactory
from tests.messaging.conftest import work, work_until
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def send_text(platform, to: str, body: str) -> int:
    response = platform.api.post("/api/v1/messages", {"to": to, "type": "text", "text": {"body": body}},
                                 format="json")
    assert response.status_code == 202, response.content
    return response.json()["id"]


def test_a_send_and_an_inbound_message_appear_under_the_tenant_path_only(mirror, platform):
    # given another tenant whose mirror was synced before
    other = TenantFactory()
    call_command("firestore_sync", "--tenant", other.slug, "--no-progress")
    other_before = mirror.doc(f"tenants/{other.pk}")
    tenant = platform.tenant

    # when the tenant sends a text and receives one
    sent_id = send_text(platform, "+1 650 555 1234", "Hello from the shop")
    work_until(lambda: Message.objects.get(pk=sent_id).status == "read")
    call_command("simulate_inbound", tenant.slug, "--from", "4915112345678", "--text", "Hallo", "--name", "Ann")
    inbound = work_until(lambda: Message.objects.filter(tenant=tenant, direction="in").first())

    # then the outbound message is mirrored with its fields and final status
    sent = Message.objects.get(pk=sent_id)
    sent_path = documents.message_path(tenant.pk, sent.conversation_id, sent.pk)
    out_doc = wait_until(lambda: (d := mirror.doc(sent_path)) and d["status"] == "read" and d, step=work)
    assert out_doc["direction"] == "out" and out_doc["type"] == "text" and out_doc["text"] == "Hello from the shop"
    assert out_doc["status_rank"] == Message.RANK["read"]
    assert out_doc["sent_at"] == sent.sent_at and out_doc["read_at"] == sent.read_at
    assert out_doc["accepted_at"] == sent.accepted_at

    # and the inbound one, with its conversation's unread count and preview
    in_path = documents.message_path(tenant.pk, inbound.conversation_id, inbound.pk)
    in_doc = wait_until(lambda: mirror.doc(in_path), step=work)
    assert in_doc["direction"] == "in" and in_doc["status"] == "received" and in_doc["text"] == "Hallo"
    conversation = wait_until(lambda: (d := mirror.doc(documents.conversation_path(tenant.pk, inbound.conversation_id)))
                            and d["last_message"] and d["last_message"]["id"] == inbound.pk and d, step=work)
    assert conversation["contact"] == {"id": inbound.contact_id, "wa_id": "4915112345678", "name": "Ann"}
    assert conversation["unread_count"] == 1 and conversation["last_message"]["preview"] == "Hallo"
    assert conversation["active_agent"] == mirror_services.active_agent_for(Conversation.objects.get(
        pk=inbound.conversation_id))

    # and the tenant document carries name, tier and session state
    tenant_doc = mirror.doc(f"tenants/{tenant.pk}")
    assert tenant_doc["name"] == tenant.name and tenant_doc["tier"]["name"] == "standard"
    assert tenant_doc["session"]["status"] == "WORKING"

    # and nothing was written outside the tenant's path: the other tenant is as it was
    assert mirror.ids("tenants") == sorted([str(tenant.pk), str(other.pk)])
    assert mirror.doc(f"tenants/{other.pk}") == other_before
    assert mirror.ids(f"tenants/{other.pk}/conversations") == []
    assert sorted(mirror.ids(f"tenants/{tenant.pk}/conversations")) == sorted(
        {str(sent.conversation_id), str(inbound.conversation_id)})

    # and the tenant's mirror status shows the last event synced
    status = MirrorStatus.objects.get(tenant=tenant)
    assert status.last_synced_at and status.last_event_id and status.consecutive_failures == 0


def test_statuses_applied_out_of_order_end_monotonic(mirror, platform):
    # given a message the sandbox has acknowledged up to read, mirrored
    message_id = send_text(platform, "16505550001", "Status race")
    work_until(lambda: Message.objects.get(pk=message_id).status == "read")
    message = Message.objects.get(pk=message_id)
    path = documents.message_path(message.tenant_id, message.conversation_id, message.pk)
    wait_until(lambda: (d := mirror.doc(path)) and d["status"] == "read", step=work)

    # when a late "delivered" ack arrives after "read"
    with transaction.atomic():
        outcome = messaging.apply_status(tenant_id=message.tenant_id, provider_message_id=message.provider_message_id,
                                         status="delivered")
    work()

    # and a slow job that read the row while it was still "sent" writes only now
    stale = Message.objects.get(pk=message_id)
    stale.status, stale.status_rank = "sent", Message.RANK["sent"]
    written = mirror_client.write_guarded([documents.message_document(stale, snapshot_at=timezone.now())])

    # then Firestore keeps "read": neither the stale ack nor the stale snapshot moved it back
    assert outcome == "stale" and written == 0
    doc = mirror.doc(path)
    assert doc["status"] == "read" and doc["status_rank"] == Message.RANK["read"]

    # and a newer state still lands (the guard lets equal-or-higher ranks through)
    failed = Message.objects.get(pk=message_id)
    failed.status, failed.status_rank = "failed", Message.RANK["failed"]
    assert mirror_client.write_guarded([documents.message_document(failed, snapshot_at=timezone.now())]) == 1
    assert mirror.doc(path)["status"] == "failed"

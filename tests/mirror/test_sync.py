"""`firestore_sync`: rebuild a wiped tenant from the database; --verify reports edited documents."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from messaging.models import Message
from mirror import documents
from mirror.models import SyncCheckpoint
from tests.factories import TenantFactory
from tests.messaging.conftest import work, work_until
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def sync(*args: str, capsys) -> str:
    call_command("firestore_sync", *args)
    return capsys.readouterr().out


def test_firestore_sync_rebuilds_a_wiped_tenant_and_verify_finds_an_edited_document(mirror, platform, capsys):
    # given a tenant with a sent and a received message, mirrored live
    tenant = platform.tenant
    response = platform.api.post("/api/v1/messages", {"to": "16505550003", "type": "text",
                                                      "text": {"body": "Backfill me"}}, format="json")
    sent_id = response.json()["id"]
    work_until(lambda: Message.objects.get(pk=sent_id).status == "read")
    call_command("simulate_inbound", tenant.slug, "--from", "4915112345000", "--text", "Und mich")
    work_until(lambda: Message.objects.filter(tenant=tenant, direction="in").exists())
    messages = list(Message.objects.filter(tenant=tenant))
    paths = [documents.message_path(tenant.pk, m.conversation_id, m.pk) for m in messages]
    wait_until(lambda: all(mirror.doc(p) for p in paths), step=work)
    other = TenantFactory()
    capsys.readouterr()

    # when the tenant's documents are wiped
    mirror.wipe_tenant(tenant.pk)

    # then --verify reports every one missing, and exits non-zero
    with pytest.raises(CommandError, match="differ"):
        sync("--tenant", tenant.slug, "--verify", capsys=capsys)
    report = capsys.readouterr().out
    assert all(f"DIFFERS {p}" in report for p in paths) and "missing" in report

    # when firestore_sync runs for the tenant (in small batches, with a progress bar)
    out = sync("--tenant", tenant.slug, "--batch-size", "1", capsys=capsys)

    # then the tenant, its conversations and messages are back, equal to the database
    assert f"{tenant.slug}: {1 + 2 + len(messages)} documents written" in out and "[###" in out
    assert mirror.doc(paths[0])["status"] == messages[0].status
    assert f"{3 + len(messages)} documents match" in sync("--tenant", tenant.slug, "--verify", "--no-progress",
                                                         capsys=capsys)
    assert not mirror.ids(f"tenants/{other.pk}/conversations") and mirror.doc(f"tenants/{other.pk}") is None
    assert SyncCheckpoint.objects.get(tenant=tenant).finished_at is not None

    # when someone edits a message document by hand
    mirror.db.document(paths[0]).update({"text": "tampered"})

    # then --verify names the document and the field
    with pytest.raises(CommandError, match="1 of"):
        sync("--tenant", tenant.slug, "--verify", "--no-progress", capsys=capsys)
    report = capsys.readouterr().out
    assert f"DIFFERS {paths[0]}" in report and "text: firestore='tampered'" in report

    # and a second sync repairs it (idempotent: the same documents, rewritten)
    sync("--tenant", tenant.slug, "--no-progress", capsys=capsys)
    assert "documents match" in sync("--tenant", tenant.slug, "--verify", "--no-progress", capsys=capsys)

"""Secrets at rest (waplatform/fields.py): stored encrypted, readable through every listed key,
re-encrypted by rotate_secrets, existing plaintext encrypted by the migration's step, and never
rendered back by the admin."""

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from agents import services as agents
from agents.models import Agent
from messaging import webhooks_out
from messaging.models import WebhookEndpoint
from pooling.models import Slot
from tests.factories import SlotFactory, TenantFactory
from waplatform import fields

pytestmark = pytest.mark.django_db

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


def stored(model, pk, column):
    """What the database holds, bypassing the field."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def test_secrets_are_stored_encrypted_and_read_back(settings):
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    slot = SlotFactory(api_key="meta-access-token-1")
    endpoint = webhooks_out.create_endpoint(tenant=TenantFactory(), url="https://93.184.216.34/x",
                                            secret="whsec_chosen_by_tenant")

    raw_key, raw_secret = stored(Slot, slot.pk, "api_key"), stored(WebhookEndpoint, endpoint.pk, "secret")

    for raw, plain in ((raw_key, "meta-access-token-1"), (raw_secret, "whsec_chosen_by_tenant")):
        assert raw.startswith("enc:v1:") and plain not in raw
        assert Fernet(OLD_KEY.encode()).decrypt(raw.removeprefix("enc:v1:").encode()).decode() == plain
    assert Slot.objects.get(pk=slot.pk).api_key == "meta-access-token-1"
    assert Slot.objects.filter(pk=slot.pk).values_list("webhook_secret", flat=True).get() == slot.webhook_secret
    assert stored(Slot, SlotFactory(api_key="").pk, "api_key") == ""  # empty stays empty


def test_a_new_first_key_reads_old_ciphertexts_and_rotate_secrets_moves_them(settings):
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    slot = SlotFactory(api_key="bridge-key")
    endpoint = webhooks_out.create_endpoint(tenant=TenantFactory(), url="https://93.184.216.34/x")
    secret = endpoint.secret

    # given a new key put first, the old one kept after it
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    assert Slot.objects.get(pk=slot.pk).api_key == "bridge-key"
    assert not fields.is_current(stored(Slot, slot.pk, "api_key"))

    out = io.StringIO()
    call_command("rotate_secrets", stdout=out)

    assert "pooling.Slot.api_key: 1 re-encrypted, 0 already current" in out.getvalue()
    assert "messaging.WebhookEndpoint.secret: 1 re-encrypted" in out.getvalue()
    # the old key can go now
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    assert Slot.objects.get(pk=slot.pk).api_key == "bridge-key"
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == secret
    again = io.StringIO()
    call_command("rotate_secrets", stdout=again)
    assert "pooling.Slot.api_key: 0 re-encrypted, 1 already current" in again.getvalue()
    assert "Done: 0 value(s) re-encrypted" in again.getvalue()


def test_a_missing_key_is_a_clear_error(settings):
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    slot = SlotFactory(api_key="bridge-key")
    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(Exception, match="does not decrypt with any key in SECRETS_ENCRYPTION_KEYS"):
        Slot.objects.get(pk=slot.pk)


def test_the_migration_step_encrypts_plaintext_rows(settings):
    from django.apps import apps

    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    slot = SlotFactory()
    with connection.cursor() as cursor:  # a row as it was before the column was encrypted
        cursor.execute("UPDATE pooling_slot SET api_key = %s, webhook_secret = %s WHERE id = %s",
                       ["plain-key", "plain-secret", slot.pk])
    assert Slot.objects.get(pk=slot.pk).api_key == "plain-key"  # readable until migrated
    forward, _ = fields.encrypt_existing("pooling", "Slot", "api_key", "webhook_secret")

    forward(apps, type("SchemaEditor", (), {"connection": connection})())

    assert stored(Slot, slot.pk, "api_key").startswith("enc:v1:")
    assert stored(Slot, slot.pk, "webhook_secret").startswith("enc:v1:")
    assert (Slot.objects.get(pk=slot.pk).api_key, Slot.objects.get(pk=slot.pk).webhook_secret) == \
        ("plain-key", "plain-secret")


def test_the_admin_never_shows_a_stored_secret_and_blank_keeps_it(admin_client, tenant):
    slot = SlotFactory(api_key="meta-token-do-not-show")
    agent = agents.create_agent(tenant=tenant, name="Bot", kind="llm", llm_base_url="https://llm.example.com/v1",
                                llm_api_key="sk-agent-do-not-show")

    pages = [admin_client.get(reverse("admin:pooling_slot_change", args=[slot.pk])),
             admin_client.get(reverse("admin:agents_agent_change", args=[agent.pk]))]
    assert [p.status_code for p in pages] == [200, 200]
    html = "".join(p.content.decode() for p in pages)
    assert "meta-token-do-not-show" not in html and "sk-agent-do-not-show" not in html
    assert 'name="llm_api_key"' in html and 'name="api_key"' in html  # the inputs are there, empty

    form = {"tenant": tenant.pk, "name": "Bot", "kind": "llm", "active": "on", "greeting": "", "fallback_text": "",
            "confidence_threshold": "", "on_low_confidence": "fallback", "llm_base_url": "https://llm.example.com/v1",
            "llm_model": "", "llm_api_key": "", "llm_api_key_env": "", "temperature": "0.3", "system_prompt": "",
            "triggers-TOTAL_FORMS": "0", "triggers-INITIAL_FORMS": "0",
            "knowledge-TOTAL_FORMS": "0", "knowledge-INITIAL_FORMS": "0"}
    assert admin_client.post(reverse("admin:agents_agent_change", args=[agent.pk]), form).status_code == 302
    assert Agent.objects.get(pk=agent.pk).llm_api_key == "sk-agent-do-not-show"


def test_dumpdata_writes_tokens_and_loaddata_reads_them_back(settings, tmp_path):
    # given a slot and a webhook endpoint holding secrets
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    slot = SlotFactory(api_key="bridge-key-not-in-dumps")
    endpoint = webhooks_out.create_endpoint(tenant=TenantFactory(), url="https://93.184.216.34/x",
                                            secret="whsec_not_in_dumps")
    dump = tmp_path / "dump.json"

    # when they are dumped, deleted and loaded again
    call_command("dumpdata", "pooling.Slot", "messaging.WebhookEndpoint", output=str(dump), verbosity=0)
    text = dump.read_text()
    Slot.objects.filter(pk=slot.pk).delete()
    WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
    call_command("loaddata", str(dump), verbosity=0)

    # then the file holds tokens only, and the loaded rows read the same secrets
    assert "bridge-key-not-in-dumps" not in text and "whsec_not_in_dumps" not in text
    assert text.count("enc:v1:") == 3  # api_key, webhook_secret, secret
    loaded = Slot.objects.get(pk=slot.pk)
    assert (loaded.api_key, loaded.webhook_secret) == ("bridge-key-not-in-dumps", slot.webhook_secret)
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == "whsec_not_in_dumps"
    assert stored(Slot, slot.pk, "api_key").startswith("enc:v1:")


def test_loaddata_refuses_tokens_no_key_decrypts(settings, tmp_path):
    settings.SECRETS_ENCRYPTION_KEYS = [OLD_KEY]
    slot = SlotFactory(api_key="bridge-key")
    dump = tmp_path / "dump.json"
    call_command("dumpdata", "pooling.Slot", output=str(dump), verbosity=0)
    Slot.objects.filter(pk=slot.pk).delete()

    settings.SECRETS_ENCRYPTION_KEYS = [NEW_KEY]
    with pytest.raises(Exception, match="no key in SECRETS_ENCRYPTION_KEYS decrypts"):
        call_command("loaddata", str(dump), verbosity=0)
    assert not Slot.objects.filter(pk=slot.pk).exists()

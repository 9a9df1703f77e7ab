"""Inputs are what they claim: bounded JSON on every write operation, ASCII phone numbers, strings as strings."""

import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from messaging.models import Message
from messaging import services as messaging
from pooling import services as pooling
from tenants.services import add_member
from tests.factories import ContactFactory, ConversationFactory, UserFactory, WebhookEndpointFactory

DEEP = ("[" * 1000 + "]" * 1000).encode()


def write_operations(client) -> list[tuple[str, str]]:
    """(method, path template) of every operation of the public schema that takes a JSON body."""
    schema = client.get("/api/schema/", {"format": "json"}).json()
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if "application/json" in (operation.get("requestBody") or {}).get("content", {})
    )


@pytest.fixture
def tenant_objects(tenant, api_client):
    """One object of each kind a write path names, so every path reaches its body."""
    agent = api_client.post("/api/v1/agents", {"name": "Deep", "kind": "knowledge_base"}, format="json").json()["id"]
    trigger = api_client.post(f"/api/v1/agents/{agent}/triggers", {"kind": "keyword", "keywords": ["hi"]},
                              format="json").json()["id"]
    knowledge = api_client.post(f"/api/v1/agents/{agent}/knowledge", {"question": "q", "answer": "a"},
                                format="json").json()["id"]
    return {
        "/api/v1/agents/{id}": {"id": agent},
        "/api/v1/agents/{agent_pk}/triggers": {"agent_pk": agent},
        "/api/v1/agents/{agent_pk}/triggers/{id}": {"agent_pk": agent, "id": trigger},
        "/api/v1/agents/{agent_pk}/knowledge": {"agent_pk": agent},
        "/api/v1/agents/{agent_pk}/knowledge/{id}": {"agent_pk": agent, "id": knowledge},
        "/api/v1/webhooks/{id}": {"id": WebhookEndpointFactory(tenant=tenant).pk},
        "/api/v1/conversations/{id}/handoff": {"id": ConversationFactory(tenant=tenant).pk},
        **{f"/api/v1/conversations/{{id}}/{action}": {"id": ConversationFactory(tenant=tenant).pk}
           for action in ("assign", "labels", "notes", "snooze", "resolve", "reopen", "resume")},
        "/api/v1/canned-replies/{id}": {
            "id": messaging.create_canned_reply(tenant=tenant, short_code="deep", content="x").pk},
        "/api/v1/contacts/{id}": {"id": ContactFactory(tenant=tenant).pk},
        "/api/v1/staff/tenants/{slug}/suspend": {"slug": tenant.slug},
        "/api/v1/staff/tenants/{slug}/reactivate": {"slug": tenant.slug},
    }


@pytest.mark.django_db
def test_a_1000_level_json_body_is_400_on_every_write_operation(api_client, tenant, tenant_objects, operator):
    staff = APIClient()
    staff.force_login(operator)
    member = APIClient()  # notes are for the tenant's people, never an API key (docs/inbox.md)
    person = UserFactory()
    add_member(tenant=tenant, user=person)
    member.force_login(person)
    operations = write_operations(api_client)
    assert len(operations) >= 15  # the schema really was read

    answers = {}
    for method, template in operations:
        client = staff if "/staff/" in template else member if template.endswith("/notes") else api_client
        path = template.format(**tenant_objects.get(template, {}))
        response = client.generic(method, path, DEEP, content_type="application/json")
        answers[(method, template)] = (response.status_code, response.json()["code"])

    assert answers == {operation: (400, "json_too_deep") for operation in operations}


@pytest.mark.django_db
def test_json_within_the_depth_limit_is_parsed(api_client, settings):
    settings.API_JSON_MAX_DEPTH = 3

    deeper = api_client.post("/api/v1/messages", {"to": "16505551234", "text": {"body": {"x": ["y"]}}}, format="json")
    shallow = api_client.post("/api/v1/messages", {"to": "16505551234", "text": {"body": 5}}, format="json")

    assert (deeper.status_code, deeper.json()["code"]) == (400, "json_too_deep")
    assert (shallow.status_code, shallow.json()["code"]) == (400, "invalid")  # parsed, then refused by its field


@pytest.mark.django_db
def test_brackets_inside_strings_do_not_count_as_depth(api_client, sending_tenant_api):
    text = "[" * 200 + '{\\"' + "]" * 200

    response = sending_tenant_api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": text}},
                                       format="json")

    assert response.status_code == 202, response.content
    assert Message.objects.get().text == text


@pytest.mark.django_db
def test_an_oversized_body_is_413_json(api_client, settings):
    settings.API_JSON_MAX_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"to": "16505551234", "text": {"body": "x" * 20_000}}).encode()

    response = api_client.generic("POST", "/api/v1/messages", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large" and "10000" in response.json()["detail"]
    assert not Message.objects.exists()


@pytest.fixture
def sending_tenant_api(api_client, tenant):
    pooling.start_session(tenant=tenant)
    return api_client


PHONE_TRICKS = {
    "arabic-indic digits": "١٦٥٠٥٥٥١٢٣٤",
    "fullwidth digits": "１６５０５５５１２３４",
    "devanagari digits": "१६५०५५५१२३४",
    "a newline inside": "1650555\n1234",
    "a trailing newline": "16505551234\n",
    "a tab": "1650555\t1234",
    "a JSON number": 16505551234,
    "a JSON boolean": True,
    "a non-ASCII chat id": "١٢٣٤٥@c.us",
}


@pytest.mark.django_db
@pytest.mark.parametrize("trick", PHONE_TRICKS)
def test_phone_number_tricks_are_400_naming_to(sending_tenant_api, trick):
    response = sending_tenant_api.post("/api/v1/messages", {"to": PHONE_TRICKS[trick], "text": {"body": "hi"}},
                                       format="json")

    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("to: ")
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_phone_number_as_a_json_number_is_told_to_send_a_string(sending_tenant_api):
    response = sending_tenant_api.post("/api/v1/messages", {"to": 16505551234, "text": {"body": "hi"}},
                                       format="json")

    assert response.json()["detail"] == 'to: Send this as a JSON string (in quotes), e.g. "16505551234".'


@pytest.mark.django_db
def test_formatted_ascii_numbers_still_work(sending_tenant_api):
    response = sending_tenant_api.post("/api/v1/messages", {"to": "+1 (650) 555-1234", "text": {"body": "hi"}},
                                       format="json")

    assert response.status_code == 202, response.content
    assert Message.objects.get().contact.wa_id == "16505551234"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [5, 5.5, True, ["hi"], {"x": 1}, None])
def test_a_text_body_must_be_a_string(sending_tenant_api, body):
    response = sending_tenant_api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": body}},
                                       format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("text: ")
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_a_cloud_number_id_in_other_digits_is_refused(api_client):
    response = api_client.post("/api/v1/session/start", {"phone_number_id": "١٠٦٥٤٠٣٥٢٢٤٢٩٢٢"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("phone_number_id: ")


def test_the_admin_keeps_its_html_pages(db):
    response = Client().get("/admin/no-such-page/")

    assert response.status_code in (302, 404)
    assert not response.get("Content-Type", "").startswith("application/json")

"""Tenant B holding tenant A's ids: the cross-tenant matrix, generated from the OpenAPI schema.

Every operation of the schema (drf-spectacular's generator, in-process) is
tried as B. An operation with a path id gets A's ids and must answer 404 (a
staff operation: 401/403 to a tenant's key), and A's object must read the same
before and after through A's own GET. Every list B reads holds none of A's
rows: each of A's rows carries MARKER, and B's answers must not. A new
operation with a path parameter FILL does not know fails
test_the_matrix_knows_every_path_parameter, so new endpoints are covered
without writing a test for them.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from agents import services as agents
from messaging import services as messaging
from messaging.models import MediaFile
from pooling import services as pooling
from tenants.services import issue_api_key
from tests.conftest import client_for
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MembershipFactory,
    MessageFactory,
    TenantFactory,
    UserFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
)
from tests.inbox.conftest import TIMEOUT, connect_ready, inbox_socket

MARKER = "tenant-a-only-7c1f"
STAFF_ANSWERS = (401, 403)
# GETs without an id that are no list of rows: the QR image of a session A's world has not started.
NOT_LISTS = {"/api/v1/session/qr.png"}


@dataclass
class World:
    tenant: object
    ids: dict[str, object]


def _tenant_world(marker: str) -> World:
    tenant = TenantFactory(name=f"Tenant {marker}")
    contact = ContactFactory(tenant=tenant, name=f"Contact {marker}")
    conversation = ConversationFactory(contact=contact, tenant=tenant)
    message = MessageFactory(conversation=conversation, text=f"hello {marker}")
    endpoint = WebhookEndpointFactory(tenant=tenant, url=f"https://hooks.example.com/{marker}",
                                      description=f"hook {marker}")
    delivery = WebhookDeliveryFactory(endpoint=endpoint, event_id=f"evt-{marker}", status="dead",
                                      payload={"note": marker})
    agent = agents.create_agent(tenant=tenant, name=f"Agent {marker}", kind="knowledge_base")
    knowledge = agents.create_knowledge_entry(agent=agent, question=f"Q {marker}?", answer=f"A {marker}")
    trigger = agents.create_trigger(tenant=tenant, agent=agent, kind="keyword", keywords=[marker])
    api_key = issue_api_key(tenant=tenant, name=f"key {marker}").api_key
    number = pooling.assign_number(phone_number_id=f"55{tenant.pk:08d}", tenant=tenant)
    canned = messaging.create_canned_reply(tenant=tenant, short_code=f"c{tenant.pk}", content=f"canned {marker}")
    label = messaging.create_label(tenant=tenant, name=f"label-{tenant.pk}")
    note = messaging.create_note(conversation=conversation, author=UserFactory(), body=f"note {marker}")
    media = MediaFile.objects.create(tenant=tenant, message=message, kind="document",
                                     original_filename=f"file {marker}.pdf")
    return World(tenant=tenant, ids={
        "contact": contact.pk, "canned": canned.pk, "label": label.pk, "note": note.pk, "media": media.pk,
        "conversation": conversation.pk, "message": message.pk, "webhook": endpoint.pk, "delivery": delivery.pk,
        "agent": agent.pk, "knowledge": knowledge.pk, "trigger": trigger.pk, "api_key": api_key.pk,
        "number": number.phone_number_id, "slug": tenant.slug,
    })


# path template -> (path parameter -> the kind of A's object it names; the A GET that shows that object,
# filled with the path's parameters or, by kind, with any of A's ids)
FILL: dict[str, tuple[dict[str, str], str]] = {
    "/api/v1/agents/{id}": ({"id": "agent"}, "/api/v1/agents/{id}"),
    "/api/v1/agents/{agent_pk}/knowledge": ({"agent_pk": "agent"}, "/api/v1/agents/{agent_pk}/knowledge"),
    "/api/v1/agents/{agent_pk}/knowledge/{id}": ({"agent_pk": "agent", "id": "knowledge"},
                                                 "/api/v1/agents/{agent_pk}/knowledge/{id}"),
    "/api/v1/agents/{agent_pk}/triggers": ({"agent_pk": "agent"}, "/api/v1/agents/{agent_pk}/triggers"),
    "/api/v1/agents/{agent_pk}/triggers/{id}": ({"agent_pk": "agent", "id": "trigger"},
                                                "/api/v1/agents/{agent_pk}/triggers/{id}"),
    "/api/v1/api-keys/{id}": ({"id": "api_key"}, "/api/v1/api-keys/{id}"),
    "/api/v1/conversations/{id}": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/conversations/{id}/agent": ({"id": "conversation"}, "/api/v1/conversations/{id}/agent"),
    "/api/v1/conversations/{id}/handoff": ({"id": "conversation"}, "/api/v1/conversations/{id}/agent"),
    "/api/v1/conversations/{id}/resume": ({"id": "conversation"}, "/api/v1/conversations/{id}/agent"),
    "/api/v1/conversations/{id}/messages": ({"id": "conversation"}, "/api/v1/conversations/{id}/messages"),
    "/api/v1/messages/{id}": ({"id": "message"}, "/api/v1/messages/{id}"),
    "/api/v1/webhooks/{id}": ({"id": "webhook"}, "/api/v1/webhooks/{id}"),
    "/api/v1/webhooks/{id}/deliveries": ({"id": "webhook"}, "/api/v1/webhooks/{id}/deliveries"),
    "/api/v1/webhooks/{id}/retry": ({"id": "webhook"}, "/api/v1/webhooks/{id}/deliveries"),
    "/api/v1/webhooks/deliveries/{id}": ({"id": "delivery"}, "/api/v1/webhooks/deliveries/{id}"),
    "/api/v1/webhooks/deliveries/{id}/replay": ({"id": "delivery"}, "/api/v1/webhooks/deliveries/{id}"),
    "/inbox/api/conversations/{id}/read": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    # the inbox's team features (docs/inbox.md)
    "/api/v1/canned-replies/{id}": ({"id": "canned"}, "/api/v1/canned-replies/{id}"),
    "/api/v1/contacts/{id}": ({"id": "contact"}, "/api/v1/contacts/{id}"),
    "/api/v1/conversations/{id}/activity": ({"id": "conversation"}, "/api/v1/conversations/{id}/activity"),
    "/api/v1/conversations/{id}/assign": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/conversations/{id}/labels": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/conversations/{id}/reopen": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/conversations/{id}/resolve": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/conversations/{id}/snooze": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/labels/{id}": ({"id": "label"}, "/api/v1/labels/{id}"),
    # the download is the file, not JSON: A's media shows in its message, in the conversation's messages
    "/api/v1/media/{id}": ({"id": "media"}, "/api/v1/conversations/{conversation}/messages"),
    # Members-only (notes are for a tenant's people): an API key is refused before any lookup.
    "/api/v1/conversations/{id}/notes": ({"id": "conversation"}, "/api/v1/conversations/{id}"),
    "/api/v1/notes/{id}": ({"id": "note"}, "/api/v1/conversations"),
    # Staff operations: a tenant's key is refused; A is read back as A sees itself.
    "/api/v1/staff/numbers/{phone_number_id}": ({"phone_number_id": "number"}, "/api/v1/numbers"),
    "/api/v1/staff/tenants/{slug}/suspend": ({"slug": "slug"}, "/api/v1/tenant"),
    "/api/v1/staff/tenants/{slug}/reactivate": ({"slug": "slug"}, "/api/v1/tenant"),
}
# Nested paths also tried with B's own parent and A's child: the child must be found through B's parent only.
OWN_PARENT = {"agent_pk": "agent"}
# One body valid for every write of the API (unknown fields are ignored), so that a
# 404 is the ownership check's answer, not a validation error's stand-in.
VALID_BODY = {"name": "B was here", "note": "B was here", "question": "x?", "answer": "B was here",
              "kind": "keyword", "keywords": ["b"], "url": "https://b.example.com/", "active": False,
              "assignee": None, "until": "2099-01-01T00:00:00Z", "labels": [], "body": "B was here",
              "short_code": "b", "content": "B was here", "attributes": {}}
BODY = {"post": VALID_BODY, "put": VALID_BODY, "patch": VALID_BODY}


@functools.cache
def _operations() -> list[tuple[str, str, dict]]:
    with GENERATOR_STATS.silence():  # the schema's own warnings are the schema tests' business
        schema = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method, operation) for path, methods in schema["paths"].items()
            for method, operation in methods.items()
            if method in ("get", "post", "put", "patch", "delete")]


def _path_params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _is_staff(path: str) -> bool:
    return "/staff/" in path


def _members_only(path: str) -> bool:
    return path.endswith("/notes") or path.startswith("/api/v1/notes/")


def _fill(template: str, values: dict[str, object]) -> str:
    return re.sub(r"{(\w+)}", lambda m: str(values[m.group(1)]), template)


def _read(client, path: str):
    answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.content[:300])
    return answer.json()


def test_the_matrix_knows_every_path_parameter(db):
    unknown = sorted({path for path, _, _ in _operations() if _path_params(path) and path not in FILL})

    assert not unknown, (f"Operations with path parameters the cross-tenant matrix cannot fill: {unknown}. "
                         "Add each to FILL in tests/test_tenant_isolation.py (which of tenant A's objects "
                         "each parameter names, and the GET that shows it).")


def test_tenant_b_with_tenant_a_ids_gets_404_and_a_is_unchanged(db, settings):
    settings.EGRESS_ALLOW_PRIVATE_URLS = True
    a, b = _tenant_world(MARKER), _tenant_world("tenant-b-0a2e")
    a_api, b_api = client_for(a.tenant), client_for(b.tenant)
    tried = []
    for path, method, _ in _operations():
        params = _path_params(path)
        if not params:
            continue
        names, snapshot_template = FILL[path]
        a_values = {p: a.ids[kind] for p, kind in names.items()}
        variants = [a_values]
        if any(p in OWN_PARENT for p in params) and not all(p in OWN_PARENT for p in params):
            variants.append({**a_values, **{p: b.ids[OWN_PARENT[p]] for p in params if p in OWN_PARENT}})
        snapshot_path = _fill(snapshot_template, {**a.ids, **a_values})
        for values in variants:
            before = _read(a_api, snapshot_path)
            answer = getattr(b_api, method)(_fill(path, values), BODY.get(method), format="json")
            after = _read(a_api, snapshot_path)

            expected = STAFF_ANSWERS if _is_staff(path) else (403,) if _members_only(path) else (404,)
            assert answer.status_code in expected, (method.upper(), path, values, answer.status_code,
                                                    answer.content[:300])
            assert MARKER not in answer.content.decode(), (method.upper(), path)
            assert after == before, (method.upper(), path, "changed A's object")
            tried.append((method, path))

    assert len(tried) >= 30  # the schema was read, and the operations with ids were tried


def test_every_list_as_tenant_b_holds_none_of_tenant_as_rows(db):
    a, b = _tenant_world(MARKER), _tenant_world("tenant-b-0a2e")
    a_api, b_api = client_for(a.tenant), client_for(b.tenant)
    lists = [path for path, method, _ in _operations()
             if method == "get" and not _path_params(path) and not _is_staff(path) and path not in NOT_LISTS]
    a_marks = (MARKER, a.ids["number"])  # every row of A carries one of these
    shown_to_a = []
    for path in lists:
        as_b = b_api.get(path)
        assert as_b.status_code == 200, (path, as_b.status_code, as_b.content[:300])
        assert not any(mark in as_b.content.decode() for mark in a_marks), f"{path} shows A's rows to B"
        if any(mark in json.dumps(_read(a_api, path)) for mark in a_marks):
            shown_to_a.append(path)

    # The world is populated: A itself sees its rows in the collections (so B's lists could have leaked them).
    assert {"/api/v1/messages", "/api/v1/conversations", "/api/v1/webhooks", "/api/v1/agents",
            "/api/v1/api-keys", "/api/v1/numbers"} <= set(shown_to_a)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
async def test_the_inbox_socket_as_tenant_b_never_sees_tenant_as_events():
    # given A's member and B's integration (its API key, header form) watching their inboxes
    a_member = await sync_to_async(MembershipFactory)()
    b_tenant = await sync_to_async(TenantFactory)()
    b_key = (await sync_to_async(issue_api_key)(tenant=b_tenant)).plaintext
    contact = await sync_to_async(ContactFactory)(tenant=a_member.tenant)
    conversation = await sync_to_async(ConversationFactory)(contact=contact, tenant=a_member.tenant)
    await sync_to_async(MessageFactory)(conversation=conversation, text=f"unread {MARKER}")
    async with inbox_socket(user=a_member.user) as a_ws, \
            inbox_socket(headers=[(b"authorization", f"Bearer {b_key}".encode())]) as b_ws:
        assert (await connect_ready(a_ws))["tenant"] == a_member.tenant_id
        assert (await connect_ready(b_ws))["tenant"] == b_tenant.pk

        # when A's conversation changes through the service the inbox uses
        await sync_to_async(messaging.mark_conversation_read)(conversation=conversation)

        # then A sees its event, and B's socket gets nothing at all
        seen_by_a = await a_ws.receive_json_from(timeout=TIMEOUT)
        assert seen_by_a["tenant"] == a_member.tenant_id
        assert seen_by_a["data"]["conversation_id"] == conversation.pk
        assert await b_ws.receive_nothing(timeout=1)

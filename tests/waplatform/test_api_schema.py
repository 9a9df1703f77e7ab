"""The published OpenAPI schema is one a developer can use from Swagger UI as it stands."""

import re
from pathlib import Path

import pytest
import yaml

from waplatform.events import EVENT_TYPES, PLATFORM_EVENT_TYPES

pytestmark = pytest.mark.django_db

TAGS = {"tenant", "session", "messages", "conversations", "webhooks", "agents", "media", "staff"}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                yield path, method, operation


def test_api_keys_are_offered_as_a_bearer_scheme_on_every_tenant_operation(schema):
    scheme = schema["components"]["securitySchemes"]["apiKey"]

    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    tenant_ops = [(p, op) for p, _, op in _operations(schema) if not p.startswith("/api/v1/staff/")]
    assert tenant_ops and all({"apiKey": []} in op["security"] for _, op in tenant_ops)


def test_every_operation_has_a_summary_and_one_of_the_documented_tags(schema):
    operations = list(_operations(schema))

    assert all(op.get("summary") for _, _, op in operations), [p for p, _, op in operations if not op.get("summary")]
    assert {tag for _, _, op in operations for tag in op["tags"]} <= TAGS
    assert {t["name"] for t in schema["tags"]} == TAGS


def test_the_inbox_private_endpoints_are_not_in_the_public_schema(schema):
    assert all(path.startswith("/api/v1/") for path in schema["paths"])


def test_sending_a_message_shows_an_example_per_message_type(schema):
    body = schema["paths"]["/api/v1/messages"]["post"]["requestBody"]["content"]["application/json"]
    types = {example["value"]["type"] for example in body["examples"].values()}

    assert types == {"text", "image", "document", "audio", "video", "location", "reaction", "template"}


def test_message_error_usage_and_staff_slots_have_their_real_shapes(schema):
    components = schema["components"]["schemas"]
    usage = schema["paths"]["/api/v1/usage"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    slots = schema["paths"]["/api/v1/staff/slots"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    assert set(components["MessageError"]["properties"]) == {"code", "reason"}
    assert components["Message"]["properties"]["error"]["nullable"] is True
    assert {"slots", "messages", "ai", "total", "price_to_date"} <= set(components["Usage"]["properties"])
    assert usage == {"$ref": "#/components/schemas/Usage"}
    assert slots["type"] == "array" and "utilisation" in components["Pool"]["properties"]


def test_every_published_event_type_is_in_the_catalogue_webhooks_accept():
    """A publish_event(type="x.y") that is not in EVENT_TYPES could never be subscribed to by name."""
    root = Path(__file__).resolve().parents[2]
    published = set()
    for source in root.glob("*/**/*.py"):
        if ".venv" in source.parts or "tests" in source.parts:
            continue
        published |= set(re.findall(r'publish_event\([^)]*?type="([a-z_.]+)"', source.read_text(), flags=re.S))
        published |= set(re.findall(r'event_type="([a-z_]+\.[a-z_]+)"', source.read_text()))

    assert published and published <= set(EVENT_TYPES) | set(PLATFORM_EVENT_TYPES)

"""A developer's first mistakes are answered with the fix, not only with what is wrong."""

import pytest

from messaging.models import Message
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db


def test_text_given_as_a_string_says_to_wrap_it_in_an_object(api):
    response = api.post("/api/v1/messages", {"to": "16505551234", "text": "hi"}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert 'send {"text": {"body": "hi"}}' in response.json()["detail"]


def test_media_given_as_a_string_says_to_wrap_the_url(api):
    response = api.post("/api/v1/messages", {"to": "16505551234", "type": "image",
                                             "image": "https://example.com/a.jpg"}, format="json")

    assert response.status_code == 400
    assert '{"image": {"url": "https://example.com/a.jpg"}}' in response.json()["detail"]


def test_an_unknown_webhook_event_type_is_refused_with_the_valid_ones(api):
    response = api.post("/api/v1/webhooks", {"url": "https://93.184.215.14/hook",
                                             "event_types": ["message.recieved"]}, format="json")

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "'message.recieved'" in detail and "message.received" in detail and "session.status" in detail


def test_a_private_webhook_url_names_the_setting_that_allows_it(api, settings):
    settings.EGRESS_ALLOW_PRIVATE_URLS = False

    response = api.post("/api/v1/webhooks", {"url": "http://10.0.0.5/hook"}, format="json")

    assert response.status_code == 400
    assert "EGRESS_ALLOW_PRIVATE_URLS" in response.json()["detail"]


@pytest.mark.parametrize("reply_to", ["999999", "wamid.NOT-A-MESSAGE-OF-OURS"])
def test_reply_to_must_name_a_message_of_the_tenant(api, reply_to):
    response = api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": "hi"}, "reply_to": reply_to},
                        format="json")

    assert response.status_code == 400
    assert reply_to in response.json()["detail"] and "GET /api/v1/messages" in response.json()["detail"]
    assert not Message.objects.exists()


def test_reply_to_a_known_provider_message_id_is_accepted(api, sending_tenant):
    quoted = MessageFactory(conversation__contact__tenant=sending_tenant, provider_message_id="wamid.HBgLMTY1MDU1NTEyMzQ")

    response = api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": "hi"},
                                             "reply_to": quoted.provider_message_id}, format="json")

    assert response.status_code == 202 and response.json()["reply_to"] == quoted.provider_message_id

"""Long values in changelists are cut, and the whole value stays one hover away (title)."""

import html
import re

import pytest
from django.urls import reverse

from tests.factories import MessageFactory, WebhookEndpointFactory

pytestmark = pytest.mark.django_db

LONG_URL = "https://hooks.example.com/inbound?token=" + "x" * 200


def test_a_long_webhook_url_is_cut_with_the_whole_url_in_its_title(admin_client):
    WebhookEndpointFactory(url=LONG_URL)

    page = html.unescape(admin_client.get(reverse("admin:messaging_webhookendpoint_changelist")).content.decode())

    assert f'title="{LONG_URL}"' in page
    assert f">{LONG_URL}<" not in page
    assert re.search(r'">https://hooks\.example\.com/inbound\?token=x+…</span>', page)


def test_a_short_message_text_is_shown_whole_without_a_title(admin_client):
    MessageFactory(text="hi there")

    page = admin_client.get(reverse("admin:messaging_message_changelist")).content.decode()

    assert ">hi there<" in page
    assert 'title="hi there"' not in page

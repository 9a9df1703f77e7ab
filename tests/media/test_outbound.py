"""Uploads (POST /api/v1/media) sent by id through both dialects: the sandbox bridge receives
the very bytes that were uploaded (Cloud: uploaded to /{phone_number_id}/media and sent by id;
WAHA: the bytes in the send call)."""

import base64
import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from messaging.models import Message
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.media.conftest import SAMPLES, work_until

pytestmark = pytest.mark.integration


def upload(api, data: bytes, content_type: str, name: str, **fields):
    return api.post("/api/v1/media", {"file": SimpleUploadedFile(name, data, content_type=content_type), **fields},
                    format="multipart")


@pytest.mark.parametrize("kind", ["image", "document"])
def test_an_uploaded_file_is_sent_and_the_bridge_receives_the_same_bytes(any_platform, kind):
    data, mimetype, filename = SAMPLES[kind]
    uploaded = upload(any_platform.api, data, mimetype, filename)
    assert uploaded.status_code == 201, uploaded.json()
    media = uploaded.json()
    assert (media["kind"], media["size"], media["sha256"]) == (kind, len(data), hashlib.sha256(data).hexdigest())

    sent = any_platform.api.post("/api/v1/messages", {"to": "4915112345678", "type": kind,
                                                      kind: {"media_id": media["id"], "caption": "here it is"}},
                                 format="json")
    assert sent.status_code == 202, sent.json()
    assert sent.json()["media"]["id"] == media["id"]

    message = work_until(lambda: Message.objects.filter(pk=sent.json()["id"], status__in=["sent", "delivered", "read"])
                         .first())
    (received,) = any_platform.received_by_bridge()
    assert base64.b64decode(received["data"]) == data
    assert (received["type"], received["to"].split("@")[0]) == (kind, "4915112345678")
    assert received["via"] == ("id" if any_platform.session.phone_number_id else "data")
    assert message.media_id == media["id"]


def test_an_upload_over_whatsapps_limit_is_refused_with_the_limit(api_client, settings):
    settings.MEDIA_MAX_BYTES = 1000
    answer = upload(api_client, b"\x89PNG" + b"\x00" * 2000, "image/png", "big.png")

    assert answer.status_code == 413
    assert answer.json()["code"] == "media_too_large"
    assert "at most 1000 bytes" in answer.json()["detail"]


def test_an_upload_of_a_type_whatsapp_refuses_is_refused_with_the_allowed_types(api_client):
    answer = upload(api_client, b"<html></html>", "text/html", "page.html", type="image")

    assert answer.status_code == 400
    assert answer.json()["code"] == "media_type_not_allowed"
    assert "image/jpeg, image/png" in answer.json()["detail"]


def test_another_tenants_media_cannot_be_sent_or_read(api_client, sending_tenant):
    data, mimetype, filename = SAMPLES["document"]
    media_id = upload(api_client, data, mimetype, filename).json()["id"]
    other = client_for(sending_tenant)

    sent = other.post("/api/v1/messages", {"to": "4915112345678", "type": "document",
                                           "document": {"media_id": media_id}}, format="json")

    assert sent.status_code == 400 and sent.json()["code"] == "media_not_found"
    assert other.get(f"/api/v1/media/{media_id}").status_code == 404


def test_the_same_upload_twice_is_stored_once(api_client, media_root):
    data, mimetype, filename = SAMPLES["image"]
    first = upload(api_client, data, mimetype, filename).json()
    second = upload(api_client, data, mimetype, "again.png").json()

    assert first["id"] != second["id"]
    originals = [p for p in media_root.rglob("*") if p.is_file() and not p.name.endswith(".thumb.jpg")]
    assert len(originals) == 1 and originals[0].read_bytes() == data

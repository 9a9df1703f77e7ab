"""Inbound media through both dialects: fetched by the media queue's job from a real sandbox
process, stored once, downloaded byte-identical through the API and a signed link."""

from datetime import timedelta

import django_rq
import httpx
import pytest
from django.test import Client
from django.utils import timezone

from messaging.media import links
from messaging.media.storage import media_storage
from messaging.models import MediaFile
from messaging.services.media import sweep_media
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.media.conftest import SAMPLES, png_bytes

pytestmark = pytest.mark.integration


def signed_path(url: str) -> str:
    return httpx.URL(url).raw_path.decode()


@pytest.mark.parametrize("kind", ["image", "voice", "document"])
def test_inbound_media_is_stored_and_downloads_byte_identical(any_platform, kind):
    data, mimetype, filename = SAMPLES[kind]
    # given a contact sends a file
    message = any_platform.receive(kind, data, mimetype, filename)

    # then the message shows it pending at first, and stored once the job ran
    assert message.media.status == "pending"
    media = any_platform.settled(message)
    assert media.status == "stored", media.reason
    body = any_platform.api.get(f"/api/v1/messages/{message.pk}").json()
    assert body["type"] == {"voice": "audio"}.get(kind, kind)
    assert body["media"]["status"] == "stored"
    assert body["media"]["size"] == len(data)
    assert body["media"]["content_type"] == mimetype.split(";")[0]

    # and the API streams the same bytes
    download = any_platform.api.get(f"/api/v1/media/{media.pk}")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == data

    # and so does the signed link, without an API key
    signed = Client().get(signed_path(body["media"]["url"]))
    assert signed.status_code == 200
    assert b"".join(signed.streaming_content) == data


def test_an_image_has_a_thumbnail_generated_once(waha_platform):
    data, mimetype, filename = SAMPLES["image"]
    message = waha_platform.receive("image", data, mimetype, filename)
    media = waha_platform.settled(message)

    body = waha_platform.api.get(f"/api/v1/messages/{message.pk}").json()
    thumb = Client().get(signed_path(body["media"]["thumbnail_url"]))

    from PIL import Image
    import io
    image = Image.open(io.BytesIO(b"".join(thumb.streaming_content)))
    assert (image.format, max(image.size)) == ("JPEG", 320)
    assert media_storage().exists(media.thumbnail_key)


def test_the_same_file_twice_is_stored_once(any_platform, media_root):
    data, mimetype, filename = SAMPLES["document"]
    first = any_platform.settled(any_platform.receive("document", data, mimetype, filename))
    second = any_platform.settled(any_platform.receive("document", data, mimetype, "copy.pdf"))

    assert first.pk != second.pk and first.storage_key == second.storage_key
    blobs = [p for p in media_root.rglob("*") if p.is_file()]
    assert len(blobs) == 1 and blobs[0].read_bytes() == data


def test_another_tenant_gets_404_and_an_expired_link_403(waha_platform):
    data, mimetype, filename = SAMPLES["image"]
    media = waha_platform.settled(waha_platform.receive("image", data, mimetype, filename))

    other = client_for(TenantFactory())
    assert other.get(f"/api/v1/media/{media.pk}").status_code == 404

    url, expires_at = links.signed_link(media.pk, now=timezone.now() - timedelta(days=30))
    assert expires_at < timezone.now()
    expired = Client().get(signed_path(url))
    assert expired.status_code == 403 and expired.json()["code"] == "link_expired"

    tampered = Client().get(signed_path(links.signed_link(media.pk)[0]).replace(f"/media/{media.pk}?",
                                                                                 f"/media/{media.pk + 1}?"))
    assert tampered.status_code == 403 and tampered.json()["code"] == "invalid_signature"


def test_a_range_request_returns_the_right_slice(waha_platform):
    data, mimetype, _ = SAMPLES["voice"]
    media = waha_platform.settled(waha_platform.receive("voice", data, mimetype))

    middle = waha_platform.api.get(f"/api/v1/media/{media.pk}", HTTP_RANGE="bytes=100-1099")
    tail = waha_platform.api.get(f"/api/v1/media/{media.pk}", HTTP_RANGE="bytes=-10")
    beyond = waha_platform.api.get(f"/api/v1/media/{media.pk}", HTTP_RANGE=f"bytes={len(data)}-")

    assert middle.status_code == 206 and b"".join(middle.streaming_content) == data[100:1100]
    assert middle["Content-Range"] == f"bytes 100-1099/{len(data)}"
    assert b"".join(tail.streaming_content) == data[-10:]
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(data)}"


def test_an_oversize_file_is_refused_with_the_reason(any_platform, settings, group_listener):
    settings.MEDIA_MAX_BYTES = 10_000
    data = png_bytes((2000, 2000), "white") + b"\x00" * 20_000
    listener = group_listener(any_platform.tenant.pk)

    media = any_platform.settled(any_platform.receive("image", data, "image/png", "big.png"))

    assert media.status == "failed"
    assert "at most 10000 bytes" in media.reason
    body = any_platform.api.get(f"/api/v1/messages/{media.message_id}").json()
    assert body["media"]["status"] == "failed" and body["media"]["reason"] == media.reason
    assert body["media"]["url"] is None
    from tests.waiting import wait_until
    wait_until(lambda: "message.media_failed" in listener.types(), message="the media_failed event")


def test_a_disallowed_type_is_refused_with_the_reason(any_platform):
    media = any_platform.settled(any_platform.receive("document", b"MZ\x90\x00" * 100, "application/x-msdownload",
                                                      "setup.exe"))

    assert media.status == "failed"
    assert media.reason.startswith("application/x-msdownload is not allowed for document messages")
    assert not media.storage_key


def test_a_download_that_keeps_failing_ends_failed_with_the_reason_after_the_last_attempt(waha_platform, settings):
    settings.MEDIA_FETCH_MAX_ATTEMPTS = 3
    data, mimetype, filename = SAMPLES["image"]
    message = waha_platform.receive("image", data, mimetype, filename)
    assert MediaFile.objects.get(pk=message.media_id).status == "pending"
    waha_platform.sandbox.control("POST", "/sandbox/faults", json={"error_status": 503, "error_count": 50})

    media = waha_platform.settled(message)
    waha_platform.sandbox.control("DELETE", "/sandbox/faults")

    assert (media.status, media.attempts) == ("failed", 3)
    assert media.reason.startswith("Gave up after 3 attempts")
    body = waha_platform.api.get(f"/api/v1/messages/{message.pk}").json()
    assert body["media"]["status"] == "failed" and "Gave up after 3 attempts" in body["media"]["reason"]


def test_a_fetch_whose_job_was_lost_is_found_by_the_sweep(waha_platform, settings):
    data, mimetype, filename = SAMPLES["document"]
    message = waha_platform.receive("document", data, mimetype, filename)
    django_rq.get_queue("media").empty()  # Redis lost the job (emptied, or the enqueue was refused)
    MediaFile.objects.filter(pk=message.media_id).update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    assert sweep_media() == 1
    media = waha_platform.settled(message)

    assert media.status == "stored"
    assert sweep_media() == 0  # nothing pending any more


def test_a_download_that_fails_twice_then_succeeds_ends_stored(any_platform):
    data, mimetype, filename = SAMPLES["image"]
    # given the webhook arrived, the bridge then fails its next two requests
    message = any_platform.receive("image", data, mimetype, filename)
    # (the job may already have run: this test wants the retries, so fault before it runs)
    assert MediaFile.objects.get(pk=message.media_id).status == "pending"
    faults = any_platform.sandbox.control("POST", "/sandbox/faults", json={"error_status": 503, "error_count": 2})
    assert faults.status_code == 200

    media = any_platform.settled(message)

    assert media.status == "stored" and media.attempts >= 2
    download = any_platform.api.get(f"/api/v1/media/{media.pk}")
    assert b"".join(download.streaming_content) == data

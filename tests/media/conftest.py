"""Media runs for real: a sandbox worker process serves the bytes a contact 'sends' (both
dialects), its signed webhooks reach the platform, the `media` queue's jobs run in real rq
workers, and the bytes land in real storage (a temporary directory; an S3 server process
in test_s3.py)."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import pytest

from messaging.models import MediaFile, Message
from pooling.models import WhatsAppSession
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.waiting import wait_until
from tests.messaging.conftest import (  # noqa: F401  (fixtures, re-exported for this package)
    Platform,
    _messaging_settings,
    group_listener,
    hook_relay,
    pump,
    sending_tenant,
    spawn_sandbox,
    start_cloud_session,
    start_working_session,
    work_until,
)

PHONE_NUMBER_ID = "106540352242922"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    root = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "media": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    settings.MEDIA_FETCH_RETRY_BASE_SECONDS = 0.05
    settings.MEDIA_FETCH_RETRY_MAX_DELAY_SECONDS = 0.2
    return root


def png_bytes(size: tuple[int, int] = (640, 480), color: str = "teal") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


SAMPLES = {
    "image": (png_bytes(), "image/png", "photo.png"),
    "voice": (b"OggS\x00\x02" + bytes(range(256)) * 40, "audio/ogg; codecs=opus", ""),
    "document": (b"%PDF-1.4\n" + b"a contract\n" * 500 + b"%%EOF\n", "application/pdf", "contract.pdf"),
}


@dataclass
class MediaPlatform(Platform):
    session_name: str = ""

    def receive(self, kind: str, data: bytes, mimetype: str, filename: str = "", text: str = "",
                sender: str = "4915112345678") -> Message:
        """A contact sends a file through the sandbox; returns the message once it reached the platform."""
        before = set(Message.objects.filter(tenant=self.tenant).values_list("pk", flat=True))
        answer = self.sandbox.control("POST", "/sandbox/inbound", json={
            "session": self.session_name, "from": sender, "text": text, "name": "Ann",
            "media": {"type": kind, "data": base64.b64encode(data).decode(), "mimetype": mimetype,
                      "filename": filename}})
        assert answer.status_code == 200, answer.text
        # Only the webhook is handed over here: the media job has not run yet when this returns.
        return wait_until(lambda: Message.objects.filter(tenant=self.tenant).exclude(pk__in=before)
                          .select_related("media").first(), step=pump, message="the inbound media message")

    def settled(self, message: Message) -> MediaFile:
        """Run the media queue until the message's file is stored or failed."""
        return work_until(lambda: MediaFile.objects.filter(pk=message.media_id).exclude(status="pending").first(),
                          "media")

    def received_by_bridge(self) -> list[dict]:
        return self.sandbox.control("GET", "/sandbox/media/received").json()


@pytest.fixture
def waha_platform(transactional_db, hook_relay, spawn_sandbox) -> MediaPlatform:
    tenant = TenantFactory()
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05, echo_delay=0.1)
    p = start_working_session(tenant, sandbox)
    return MediaPlatform(**vars(p), session_name=p.session.name)


@pytest.fixture
def cloud_platform(transactional_db, hook_relay, spawn_sandbox) -> MediaPlatform:
    tenant = TenantFactory()
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05, echo_delay=0.1)
    start_cloud_session(tenant, sandbox, phone_number_id=PHONE_NUMBER_ID)
    session = WhatsAppSession.objects.get(tenant=tenant)
    return MediaPlatform(tenant=tenant, api=client_for(tenant), sandbox=sandbox, slot=None, session=session,
                         session_name=PHONE_NUMBER_ID)


@pytest.fixture(params=["waha", "cloud"])
def any_platform(request, transactional_db, hook_relay) -> MediaPlatform:
    """The same test through both dialects."""
    return request.getfixturevalue(f"{request.param}_platform")

"""Media in the live inbox, in a real browser: an inbound image shows inline (its stored
thumbnail, through the signed link), and a file attached in the composer reaches the
sandbox WhatsApp byte for byte (as WAHA does, it downloads the platform's signed link)."""

import base64
import io

import pytest
from playwright.sync_api import expect

from messaging.models import MediaFile, Message
from pooling import services as pooling
from pooling.models import WhatsAppSession
from tests.browser.conftest import screenshot
from tests.browser.test_inbox import TIMEOUT_MS, member, sign_in  # noqa: F401  (fixture)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (800, 600), "orange").save(out, "PNG")
    return out.getvalue()


def test_the_inbox_shows_an_inbound_image_and_sends_an_attachment(page, running_platform, member):
    # given a working session and a member in the inbox
    pooling.start_session(tenant=member.tenant)
    wait_until(lambda: WhatsAppSession.objects.filter(tenant=member.tenant, status="WORKING").exists(), timeout=30)
    session = WhatsAppSession.objects.get(tenant=member.tenant)
    sign_in(page, running_platform.url, member.user.username)

    # when a contact sends a photo
    image = png_bytes()
    answer = member.sandbox.control("POST", "/sandbox/inbound", json={
        "session": session.name, "from": "4915112345678", "name": "Erika Mustermann", "text": "The parcel",
        "media": {"type": "image", "data": base64.b64encode(image).decode(), "mimetype": "image/png",
                  "filename": "parcel.png"}})
    assert answer.status_code == 200, answer.text

    # then it shows inline in the conversation, as its thumbnail, once stored
    page.locator(".conversation", has_text="Erika Mustermann").click()
    thumbnail = page.locator(".message.in .media-image img")
    expect(thumbnail).to_be_visible(timeout=TIMEOUT_MS)
    wait_until(lambda: thumbnail.evaluate("img => img.complete && img.naturalWidth") == 320, timeout=30,
               message="the thumbnail to load")
    expect(page.locator(".message.in", has_text="The parcel")).to_be_visible()
    screenshot(page, "inbox-media-1-inbound-image")

    # when the member attaches a document
    document = b"%PDF-1.4\n" + b"the invoice\n" * 300 + b"%%EOF\n"
    page.set_input_files("#reply-file", files=[{"name": "invoice.pdf", "mimeType": "application/pdf",
                                                "buffer": document}])

    # then it shows as a download with its name and size, goes out, and WhatsApp has the same bytes
    sent = page.locator(".message.out a.media-file")
    expect(sent).to_contain_text("invoice.pdf", timeout=TIMEOUT_MS)
    expect(sent.locator(".media-size")).to_have_text("3.5 KB")
    message = wait_until(lambda: Message.objects.filter(tenant=member.tenant, direction="out",
                                                        status__in=["sent", "delivered", "read"]).first(),
                         timeout=30, message="the attachment to be sent")
    assert MediaFile.objects.get(pk=message.media_id).original_filename == "invoice.pdf"
    received = member.sandbox.control("GET", "/sandbox/media/received").json()
    assert [(r["type"], r["via"], base64.b64decode(r["data"])) for r in received] == [("document", "url", document)]
    screenshot(page, "inbox-media-2-attachment-sent")
    assert page.errors == []

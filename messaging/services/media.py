"""Media files both ways: inbound fetched from the bridge and stored, uploads, retention.

Inbound: intake records a `pending` MediaFile with the message (in the intake
transaction) and, after commit, `messaging.jobs.fetch_media` runs on the
`media` queue. The job downloads from the bridge, outside any transaction,
checks WhatsApp's limits, stores the bytes once per (tenant, sha256) and marks
the file `stored`, or retries with backoff and at last marks it `failed` with
the reason. Each outcome is an event (message.media_stored / media_failed)
carrying the one message shape, so webhooks, the inbox and the mirror see it.
Retention and what stored files cost: messaging.services.media_retention.

Egress (docs/media.md, "Where bytes are fetched from"): a URL on the slot's
own base URL is the operator's bridge, trusted like every other bridge call
and spoken to with the slot's key; any other URL a bridge names (Meta's
lookaside CDN, WAHA's S3) goes through waplatform.egress like any URL the
platform did not choose, and gets no bridge key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone

from messaging import leases
from messaging.media import limits, storage
from messaging.media.limits import MediaRefused
from messaging.models import MediaFile, Message
from messaging.services.payloads import publish_message
from pooling import services as pooling
from pooling.bridges.base import MediaSource, PermanentBridgeError, TransientBridgeError
from tenants.models import Tenant
from waplatform import egress
from waplatform.backoff import backoff_delay
from waplatform.queues import enqueue_on_commit

logger = logging.getLogger(__name__)

QUEUE = "media"
FETCH_JOB = "messaging.jobs.fetch_media"
# A claimed fetch keeps others off the file this long; a killed worker's file is then taken again.
LEASE_MARGIN_SECONDS = 30
UPLOAD_KINDS = ("image", "audio", "video", "document")


# --- inbound ------------------------------------------------------------------------


def record_inbound_media(*, message: Message, media: dict | None, slot_id: int | None) -> MediaFile | None:
    """Attach a `pending` MediaFile to a media message just stored and enqueue its fetch on commit.

    Runs inside intake's transaction. A media message whose bridge sent no media
    (WAHA's hasMedia with media null: the bridge did not download it) is `failed` at once.
    """
    kind = limits.kind_for(message.type)
    if kind is None:
        return None
    media = dict(media or {})
    file = MediaFile(tenant_id=message.tenant_id, message=message, kind=kind,
                     original_filename=str(media.get("filename") or "")[:255],
                     content_type=limits.normalise_content_type(str(media.get("mimetype") or media.get("mime_type") or "")),
                     source={"media": media, "slot_id": slot_id}, next_attempt_at=timezone.now())
    if not media:
        file.status = MediaFile.Status.FAILED
        file.reason = "The bridge did not download this media (it sent the message without its file)."
        file.next_attempt_at = None
    file.save()
    Message.objects.filter(pk=message.pk).update(media=file)
    message.media = file
    if file.status == MediaFile.Status.PENDING:
        enqueue_on_commit(FETCH_JOB, file.pk, queue=QUEUE)
    return file


class _Retry(Exception):
    """A failure worth another attempt (the bridge or the network, not the file)."""


def _claim(media_id: int) -> MediaFile | None:
    lease = settings.MEDIA_FETCH_TIMEOUT_SECONDS * 2 + LEASE_MARGIN_SECONDS
    claimable = MediaFile.objects.select_related("tenant").filter(status=MediaFile.Status.PENDING)
    return leases.claim(claimable, pk=media_id, lease_field="next_attempt_at", lease_seconds=lease,
                        take=_start_fetch)


def _start_fetch(file: MediaFile, now: datetime) -> list[str] | None:
    if file.next_attempt_at and file.next_attempt_at > now + timedelta(seconds=1):
        return None  # an early duplicate (the sweeper beside a scheduled retry), or another job's lease
    file.attempts += 1
    return ["attempts"]


def fetch_media(*, media_id: int) -> str:
    """One download attempt of an inbound file. Returns what happened (for logs and tests)."""
    file = _claim(media_id)
    if file is None:
        return "nothing to do"
    try:
        spooled, source = _download(file)
    except MediaRefused as exc:
        _finish_failed(file, f"{exc.detail}")
        return f"refused: {exc.detail}"
    except _Retry as exc:
        return _retry_or_fail(file, str(exc))
    try:
        content_type = limits.normalise_content_type(source.content_type) or file.content_type \
            or limits.guess_content_type(file.original_filename)
        try:
            limits.check(kind=file.kind, content_type=content_type, size=spooled.size)
        except MediaRefused as exc:
            _finish_failed(file, exc.detail)
            return f"refused: {exc.detail}"
        if source.sha256 and source.sha256.lower() != spooled.sha256:
            return _retry_or_fail(file, "the downloaded bytes do not match the sha256 the bridge announced")
        key, _ = storage.store_blob(tenant_id=file.tenant_id, spooled=spooled)
        thumb = ""
        if file.kind in ("image", "sticker"):
            thumb = storage.make_thumbnail(tenant_id=file.tenant_id, sha256=spooled.sha256, source=spooled.file)
    finally:
        spooled.close()
    _finish_stored(file, content_type=content_type, size=spooled.size, sha256=spooled.sha256, key=key,
                   thumbnail_key=thumb, filename=file.original_filename or source.filename)
    return "stored"


def _download(file: MediaFile) -> tuple[storage.Spooled, MediaSource]:
    try:
        sending = pooling.media_session(tenant=file.tenant, slot_id=(file.source or {}).get("slot_id"),
                                        timeout=settings.MEDIA_FETCH_TIMEOUT_SECONDS)
    except pooling.NoSession as exc:
        raise MediaRefused("no_session", str(exc)) from None
    except pooling.SessionNotReady as exc:
        raise _Retry(str(exc)) from None
    limit = limits.max_bytes(file.kind)
    try:
        source = sending.bridge.media_source(sending.session_name, (file.source or {}).get("media") or {})
    except TransientBridgeError as exc:
        raise _Retry(f"the bridge: {exc.reason}") from None
    except PermanentBridgeError as exc:
        raise MediaRefused("bridge_refused", f"The bridge cannot give this media: {exc.reason}") from None
    finally:
        close = getattr(sending.bridge, "close", None)
        if close:
            close()
    if source.content_type and limits.normalise_content_type(source.content_type) not in limits.RULES[file.kind].content_types:
        limits.check(kind=file.kind, content_type=source.content_type, size=0)  # refuses before downloading
    if source.size is not None and source.size > limit:
        limits.check(kind=file.kind, content_type=source.content_type or file.content_type, size=source.size)
    timeout = httpx.Timeout(settings.MEDIA_FETCH_TIMEOUT_SECONDS, connect=min(10.0, settings.MEDIA_FETCH_TIMEOUT_SECONDS))
    if source.on_bridge:
        client = httpx.Client(timeout=timeout, headers=source.headers)
    else:
        client = egress.guarded_client(timeout=timeout, headers=source.headers, follow_redirects=True,
                                       max_response_bytes=limit + storage.SPOOL_BYTES,
                                       total_timeout=settings.MEDIA_FETCH_TIMEOUT_SECONDS * 4)
    try:
        with client, client.stream("GET", source.url) as response:
            if response.status_code >= 500 or response.status_code in (408, 429):
                raise _Retry(f"the media download answered HTTP {response.status_code}")
            if response.status_code >= 400:
                raise MediaRefused("media_unavailable",
                                   f"The media download answered HTTP {response.status_code}: the bridge no longer has it.")
            if not source.content_type:
                source.content_type = response.headers.get("content-type", "")
            try:
                spooled = storage.spool(response.iter_bytes(), limit=limit)
            except storage.TooLarge:
                limits.check(kind=file.kind, content_type=source.content_type or file.content_type, size=limit + 1)
                raise
    except egress.EgressRefused as exc:
        raise MediaRefused("egress_refused", f"The media URL is refused: {exc}") from None
    except httpx.HTTPError as exc:
        raise _Retry(f"the media download failed: {exc!r}") from None
    return spooled, source


def _retry_or_fail(file: MediaFile, reason: str) -> str:
    if file.attempts >= settings.MEDIA_FETCH_MAX_ATTEMPTS:
        _finish_failed(file, f"Gave up after {file.attempts} attempts: {reason}")
        return f"failed: {reason}"
    delay = backoff_delay(file.attempts, base=settings.MEDIA_FETCH_RETRY_BASE_SECONDS,
                          cap=settings.MEDIA_FETCH_RETRY_MAX_DELAY_SECONDS)
    with transaction.atomic():
        MediaFile.objects.filter(pk=file.pk, status=MediaFile.Status.PENDING).update(
            next_attempt_at=timezone.now() + timedelta(seconds=delay), reason=f"attempt {file.attempts}: {reason}"[:2000])
        enqueue_on_commit(FETCH_JOB, file.pk, queue=QUEUE, delay=delay)
    return f"retry in {delay:.1f}s: {reason}"


@transaction.atomic
def _finish_failed(file: MediaFile, reason: str) -> None:
    updated = MediaFile.objects.filter(pk=file.pk, status=MediaFile.Status.PENDING).update(
        status=MediaFile.Status.FAILED, reason=reason[:2000], next_attempt_at=None)
    if updated:
        publish_for_media(file.pk, "message.media_failed")


@transaction.atomic
def _finish_stored(file: MediaFile, *, content_type: str, size: int, sha256: str, key: str, thumbnail_key: str,
                   filename: str) -> None:
    updated = MediaFile.objects.filter(pk=file.pk, status=MediaFile.Status.PENDING).update(
        status=MediaFile.Status.STORED, reason="", content_type=content_type, size=size, sha256=sha256,
        storage_key=key, thumbnail_key=thumbnail_key, original_filename=filename[:255], next_attempt_at=None,
        stored_at=timezone.now())
    if updated:
        publish_for_media(file.pk, "message.media_stored")


def publish_for_media(media_id: int, event_type: str) -> None:
    """The event of a file's new state, once per message that carries the file."""
    for message_id in Message.objects.filter(media_id=media_id).values_list("pk", flat=True):
        publish_message(event_type=event_type, message_id=message_id)


def sweep_media(*, now: datetime | None = None) -> int:
    """Re-enqueue pending fetches whose job was lost (Redis emptied, enqueue refused). Every minute."""
    now = now or timezone.now()
    due = list(MediaFile.objects.filter(status=MediaFile.Status.PENDING,
                                        next_attempt_at__lt=now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS))
               .order_by("pk").values_list("pk", flat=True)[: settings.SWEEP_BATCH_SIZE])
    return leases.requeue(job=FETCH_JOB, queue=QUEUE, ids=due,
                          due_now=MediaFile.objects.filter(status=MediaFile.Status.PENDING))


# --- uploads ----------------------------------------------------------------------------


@dataclass
class Upload:
    media: MediaFile
    created_blob: bool


def upload_media(*, tenant: Tenant, upload: UploadedFile, kind: str = "", filename: str = "") -> Upload:
    """Store a tenant's file for sending later by id. Raises MediaRefused (code, detail) on a limit."""
    filename = (filename or upload.name or "file")[:255]
    content_type = limits.normalise_content_type(upload.content_type or "") or limits.guess_content_type(filename)
    if content_type == "application/octet-stream":
        content_type = limits.guess_content_type(filename)
    kind = kind or limits.kind_for_content_type(content_type)
    if kind == "sticker":
        kind = "document"
    if kind not in UPLOAD_KINDS:
        raise MediaRefused("invalid_type", f"type must be one of {', '.join(UPLOAD_KINDS)}.")
    limits.check(kind=kind, content_type=content_type, size=upload.size or 0)
    try:
        spooled = storage.spool(upload.chunks(), limit=limits.max_bytes(kind))
    except storage.TooLarge:
        limits.check(kind=kind, content_type=content_type, size=limits.max_bytes(kind) + 1)
        raise
    try:
        key, written = storage.store_blob(tenant_id=tenant.pk, spooled=spooled)
        thumb = storage.make_thumbnail(tenant_id=tenant.pk, sha256=spooled.sha256, source=spooled.file) \
            if kind == "image" else ""
    finally:
        spooled.close()
    media = MediaFile.objects.create(
        tenant=tenant, kind=kind, status=MediaFile.Status.STORED, content_type=content_type, size=spooled.size,
        sha256=spooled.sha256, original_filename=filename, storage_key=key, thumbnail_key=thumb,
        stored_at=timezone.now())
    return Upload(media=media, created_blob=written)


def media_for_sending(*, tenant: Tenant, media_id: int, kind: str) -> MediaFile:
    """The tenant's stored file a message sends by id; MediaRefused when it cannot be that message."""
    media = MediaFile.objects.filter(tenant=tenant, pk=media_id).first()
    if media is None:
        raise MediaRefused("media_not_found", f"No media {media_id} in this tenant; upload it with POST /api/v1/media.")
    if media.status != MediaFile.Status.STORED:
        raise MediaRefused("media_not_stored", f"Media {media_id} is {media.status}, not stored: it cannot be sent.")
    limits.check(kind=kind, content_type=media.content_type, size=media.size or 0)
    return media


@dataclass
class OutboundMedia:
    media_id: str = ""
    media_data: bytes | None = None
    media_url: str = ""
    mimetype: str = ""
    filename: str = ""


def outbound_media(*, media: MediaFile, sending) -> OutboundMedia:
    """What the bridge needs to send a stored file: Cloud gets it uploaded and sends by id;
    WAHA gets the bytes (MEDIA_WAHA_SEND_MODE=data) or a signed link it downloads (url).

    Raises BridgeError from the upload; the caller treats it like a failed send.
    """
    from messaging.media.links import signed_link

    common = {"mimetype": media.content_type, "filename": media.original_filename}
    if sending.dialect == "cloud":
        with storage.open_blob(media.storage_key) as handle:
            data = handle.read()
        uploaded = sending.bridge.upload_media(sending.session_name, data, content_type=media.content_type,
                                               filename=media.original_filename)
        return OutboundMedia(media_id=uploaded, **common)
    if settings.MEDIA_WAHA_SEND_MODE == "url":
        return OutboundMedia(media_url=signed_link(media.pk)[0], **common)
    with storage.open_blob(media.storage_key) as handle:
        return OutboundMedia(media_data=handle.read(), **common)

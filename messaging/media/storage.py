"""Media bytes through Django's storage API ("media" in STORAGES): the local filesystem
under var/media/ by default, any S3-compatible store with MEDIA_STORAGE=s3.

Keys are made of the tenant and the content's sha256, so the same bytes of a
tenant are written once, whoever sends them again; tenants never share a blob
(one tenant's retention or deletion cannot take another's file).
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, storages

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
# Past this, a file being received is spooled to disk rather than held in memory.
SPOOL_BYTES = 1024 * 1024


def media_storage() -> Storage:
    return storages["media"]


def blob_key(tenant_id: int, sha256: str) -> str:
    return f"tenants/{tenant_id}/{sha256[:2]}/{sha256}"


def thumbnail_key(tenant_id: int, sha256: str) -> str:
    return blob_key(tenant_id, sha256) + ".thumb.jpg"


class TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass
class Spooled:
    """Received bytes, hashed on the way in; `file` is positioned at 0."""

    file: IO[bytes]
    size: int
    sha256: str

    def close(self) -> None:
        self.file.close()


def spool(chunks: Iterable[bytes], *, limit: int) -> Spooled:
    """Copy a stream to a spooled temporary file, hashing it, refusing past `limit` bytes
    (the stream is cut there: a lying Content-Length cannot make us read more)."""
    digest, size = hashlib.sha256(), 0
    buffer = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (closed by the caller)
    try:
        for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise TooLarge(limit)
            digest.update(chunk)
            buffer.write(chunk)
    except BaseException:
        buffer.close()
        raise
    buffer.seek(0)
    return Spooled(file=buffer, size=size, sha256=digest.hexdigest())


def store_blob(*, tenant_id: int, spooled: Spooled) -> tuple[str, bool]:
    """Write the bytes under their content key unless already there. Returns (key, written)."""
    storage = media_storage()
    key = blob_key(tenant_id, spooled.sha256)
    if storage.exists(key):
        return key, False
    spooled.file.seek(0)
    saved = storage.save(key, File(spooled.file, name=key))
    if saved != key:  # a storage that renames on collision would break the dedupe
        raise RuntimeError(f"media storage saved {key} as {saved}: it must overwrite, not rename")
    return key, True


def make_thumbnail(*, tenant_id: int, sha256: str, source: IO[bytes]) -> str:
    """A JPEG thumbnail of an image, generated once per blob and stored beside it; '' when
    Pillow cannot read the image (the file itself stays; the inbox then shows it full size)."""
    from PIL import Image, UnidentifiedImageError

    storage = media_storage()
    key = thumbnail_key(tenant_id, sha256)
    if storage.exists(key):
        return key
    try:
        source.seek(0)
        with Image.open(source) as image:
            image.thumbnail((settings.MEDIA_THUMBNAIL_PIXELS, settings.MEDIA_THUMBNAIL_PIXELS))
            out = io.BytesIO()
            image.convert("RGB").save(out, "JPEG", quality=80)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        logger.info("no thumbnail for %s: %s", sha256, exc)
        return ""
    out.seek(0)
    storage.save(key, File(out, name=key))
    return key


def open_blob(key: str) -> IO[bytes]:
    return media_storage().open(key, "rb")


def delete_blob(key: str) -> None:
    if key:
        media_storage().delete(key)


def blob_exists(key: str) -> bool:
    return bool(key) and media_storage().exists(key)


def iter_range(key: str, start: int, length: int) -> Iterator[bytes]:
    """`length` bytes of the blob from `start`, in chunks (a streaming response's body)."""
    with open_blob(key) as handle:
        if start:
            handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk

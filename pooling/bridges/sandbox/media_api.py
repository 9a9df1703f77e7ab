"""Media in the sandbox, both dialects: files contacts 'send' are served as real bytes
(WAHA's /api/files/..., Graph's GET /{media-id} then the attachment URL), and files the
platform sends (uploaded by id, by link, or inline) are kept in `received_media`, which
GET /sandbox/media/received lists with their bytes, so tests compare them byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pooling.bridges.sandbox.cloud_api import GraphError, _bearer, authorised_number, get_number
from pooling.bridges.sandbox.state import WAHA_MEDIA_TYPES, SandboxMedia
from pooling.bridges.sandbox.waha_api import BadRequest, sandbox_of

from pooling.bridges.sandbox.state import MAX_MEDIA_BYTES as MAX_FETCH_BYTES


def inbound_media(spec: object, *, base_url: str) -> dict | None:
    """The `media` of a POST /sandbox/inbound: {type, data (base64), mimetype, filename}."""
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") not in WAHA_MEDIA_TYPES:
        raise BadRequest(400, f"media.type must be one of {', '.join(WAHA_MEDIA_TYPES)}")
    try:
        data = base64.b64decode(str(spec.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, "media.data must be base64") from None
    if not data:
        raise BadRequest(400, "media.data is required (base64 of the file)")
    return {"type": spec["type"], "data": data, "mimetype": str(spec.get("mimetype") or "application/octet-stream"),
            "filename": str(spec.get("filename") or ""), "base_url": base_url}


def _file_response(media: SandboxMedia) -> Response:
    return Response(media.data, media_type=media.mimetype, headers={"Content-Length": str(len(media.data))})


async def waha_file(request: Request) -> Response:
    """GET /api/files/{session}/{id}.{ext}: the API key was checked by the middleware."""
    media = sandbox_of(request).media.get(request.path_params["filename"].split(".", 1)[0])
    if media is None or media.owner != request.path_params["session"]:
        raise BadRequest(404, "File not found")
    return _file_response(media)


def _owned_media(request: Request, media_id: str) -> SandboxMedia | None:
    sandbox = sandbox_of(request)
    media = sandbox.media.get(media_id)
    if media is None:
        return None
    number = sandbox.numbers.get(media.owner)
    if number is None or not hmac.compare_digest(_bearer(request).encode(), number.access_token.encode()):
        raise GraphError(401, 190, "Error validating access token: not the token of the number that owns this media")
    return media


async def graph_object(request: Request) -> Response:
    """GET /{id}: a media id answers its download URL (as Meta does, valid for minutes); anything else
    is a phone number id."""
    media = _owned_media(request, request.path_params["phone_number_id"])
    if media is None:
        return await get_number(request)
    url = f"{str(request.base_url).rstrip('/')}/whatsapp_business/attachments/?mid={media.id}"
    return JSONResponse({"messaging_product": "whatsapp", "url": url, "mime_type": media.mimetype,
                         "sha256": media.sha256, "file_size": len(media.data), "id": media.id})


async def graph_attachment(request: Request) -> Response:
    media = _owned_media(request, request.query_params.get("mid", ""))
    if media is None:
        raise GraphError(404, 100, "Unsupported get request: no such media (sandbox)")
    return _file_response(media)


async def graph_upload(request: Request) -> Response:
    """POST /{phone_number_id}/media, multipart: file, type, messaging_product — as Meta takes it."""
    number = authorised_number(request)
    form = await request.form(max_part_size=MAX_FETCH_BYTES)
    upload = form.get("file")
    if form.get("messaging_product") != "whatsapp" or upload is None or isinstance(upload, str):
        raise GraphError(400, 100, "(#100) messaging_product=whatsapp and a file part are required")
    data = await upload.read()
    media = sandbox_of(request).keep_media(number.phone_number_id, {
        "data": data, "mimetype": str(form.get("type") or upload.content_type or ""), "filename": upload.filename or ""})
    return JSONResponse({"id": media.id})


async def received(request: Request) -> Response:
    return JSONResponse(list(sandbox_of(request).received_media))


control_routes = [Route("/sandbox/media/received", received, methods=["GET"])]
waha_routes = [Route("/api/files/{session}/{filename}", waha_file, methods=["GET"])]
# Before the Cloud dialect's "/{phone_number_id}" routes, which would take these paths.
graph_routes = [
    Route("/whatsapp_business/attachments/", graph_attachment, methods=["GET"]),
    Route("/{phone_number_id}/media", graph_upload, methods=["POST"]),
    Route("/{phone_number_id}", graph_object, methods=["GET"]),
]

"""The WhatsApp Cloud API (Graph) dialect of the sandbox."""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pooling.bridges.sandbox.state import CloudNumber, fake_digits
from pooling.bridges.sandbox.waha_api import BadRequest, json_body, sandbox_of

SEND_TYPES = ("text", "image", "document", "audio", "video", "location", "reaction", "template", "interactive")


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> JSONResponse:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "sandbox"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return JSONResponse({"error": error}, status)


class GraphError(Exception):
    def __init__(self, status: int, code: int, message: str, subcode: int | None = None) -> None:
        super().__init__(message)
        self.response = graph_error(status, code, message, subcode)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else ""


def authorised_number(request: Request) -> CloudNumber:
    number = sandbox_of(request).numbers.get(request.path_params["phone_number_id"])
    if number is None:
        raise GraphError(400, 100, f"Unsupported get request. Object with ID "
                                   f"'{request.path_params['phone_number_id']}' does not exist (sandbox)", 33)
    if not hmac.compare_digest(_bearer(request).encode(), number.access_token.encode()):
        raise GraphError(401, 190, "Error validating access token: the sandbox does not know this token")
    return number


async def get_number(request: Request) -> Response:
    return JSONResponse(authorised_number(request).public())


async def get_me(request: Request) -> Response:
    token = _bearer(request).encode()
    if not any(hmac.compare_digest(token, n.access_token.encode()) for n in sandbox_of(request).numbers.values()):
        raise GraphError(401, 190, "Error validating access token: the sandbox does not know this token")
    return JSONResponse({"id": "sandbox-app", "name": "WA Platform sandbox (not WhatsApp)"})


def _validate(body: dict) -> tuple[str, str]:
    """(recipient digits, a text to echo) of a valid send body; raises Graph's code 100 otherwise."""
    if body.get("messaging_product") != "whatsapp":
        raise GraphError(400, 100, "(#100) The parameter messaging_product is required.")
    to = str(body.get("to") or "")
    if not re.fullmatch(r"\d{6,15}", to):
        raise GraphError(400, 100, "(#100) Invalid parameter: to must be E.164 digits")
    kind = body.get("type", "text")
    content = body.get(kind)
    if kind not in SEND_TYPES or not isinstance(content, dict):
        raise GraphError(400, 100, f"(#100) Invalid parameter: type {kind!r} needs an object under {kind!r}")
    if kind == "text" and not content.get("body"):
        raise GraphError(400, 100, "(#100) Param text['body'] is required.")
    if kind in ("image", "document", "audio", "video") and not (content.get("link") or content.get("id")):
        raise GraphError(400, 100, f"(#100) Param {kind}['link'] or {kind}['id'] is required.")
    if kind == "location" and not all(isinstance(content.get(k), (int, float)) for k in ("latitude", "longitude")):
        raise GraphError(400, 100, "(#100) location needs numeric latitude and longitude")
    if kind == "reaction" and not content.get("message_id"):
        raise GraphError(400, 100, "(#100) Param reaction['message_id'] is required.")
    if kind == "template" and not content.get("name"):
        raise GraphError(400, 100, "(#100) Param template['name'] is required.")
    text = content.get("body") or content.get("caption") or content.get("emoji") or content.get("name") or f"[{kind}]"
    return to, str(text)


async def post_messages(request: Request) -> Response:
    number = authorised_number(request)
    try:
        body = await json_body(request)
    except BadRequest as exc:
        raise GraphError(400, 100, exc.message) from None
    if body.get("status") == "read":
        if body.get("messaging_product") != "whatsapp" or not body.get("message_id"):
            raise GraphError(400, 100, "(#100) mark as read needs messaging_product and message_id")
        return JSONResponse({"success": True})
    to, text = _validate(body)
    kind = body.get("type", "text")
    if kind in ("image", "document", "audio", "video"):
        await _record_media(request, number, to, kind, body[kind])
    message_id = sandbox_of(request).cloud_sent(number, to, text, str(body.get("biz_opaque_callback_data") or ""))
    return JSONResponse({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
                         "messages": [{"id": message_id}]})


async def _record_media(request: Request, number: CloudNumber, to: str, kind: str, content: dict) -> None:
    sandbox = sandbox_of(request)
    if content.get("id"):
        media = sandbox.media.get(str(content["id"]))
        if media is None or media.owner != number.phone_number_id:
            raise GraphError(400, 131053, f"(#131053) Media upload error: no media {content['id']} for this number")
        data, mimetype, filename, via = media.data, media.mimetype, media.filename, "id"
    else:
        data = await sandbox.fetch_link(str(content["link"]))
        mimetype, filename, via = "", "", "link"
    sandbox.record_received(dialect="cloud", session=number.phone_number_id, to=to, kind=kind, via=via, data=data,
                            mimetype=mimetype, filename=str(content.get("filename") or filename))


async def register_number(request: Request) -> Response:
    """Sandbox-only: stands in for the number and webhook set-up done in Meta's dashboard."""
    sandbox = sandbox_of(request)
    body = await json_body(request)
    phone_number_id = str(body.get("phone_number_id") or "")
    token, secret = str(body.get("access_token") or ""), str(body.get("app_secret") or "")
    if not re.fullmatch(r"[\w.-]{1,64}", phone_number_id) or not token or not secret:
        raise BadRequest(400, "phone_number_id, access_token and app_secret are required")
    existing = sandbox.numbers.get(phone_number_id)
    if existing is not None:
        # Re-registering updates the webhook, but only for whoever holds the number's token.
        if not hmac.compare_digest(token.encode(), existing.access_token.encode()):
            raise BadRequest(409, f"phone number {phone_number_id} is registered with another token")
        existing.app_secret, existing.webhook_url = secret, str(body.get("webhook_url") or "")
        return JSONResponse(existing.public())
    if sandbox.full:
        raise BadRequest(422, f"Sandbox worker is full: capacity {sandbox.config.capacity} sessions reached")
    number = CloudNumber(phone_number_id=phone_number_id, access_token=token, app_secret=secret,
                         webhook_url=str(body.get("webhook_url") or ""),
                         display_phone_number=str(body.get("display_phone_number") or fake_digits()),
                         waba_id="sandbox-waba-" + secrets.token_hex(4), metadata=body.get("metadata") or {})
    sandbox.numbers[phone_number_id] = number
    return JSONResponse(number.public(), 201)


async def unregister_number(request: Request) -> Response:
    sandbox = sandbox_of(request)
    number = sandbox.numbers.get(request.path_params["phone_number_id"])
    if number is None:
        raise BadRequest(404, "no such sandbox Cloud number")
    admin = hmac.compare_digest(request.headers.get("x-api-key", "").encode(), sandbox.config.api_key.encode())
    if not admin and not hmac.compare_digest(_bearer(request).encode(), number.access_token.encode()):
        raise BadRequest(401, "Unauthorized")
    del sandbox.numbers[number.phone_number_id]
    return JSONResponse({}, 200)


control_routes = [
    Route("/sandbox/cloud/numbers", register_number, methods=["POST"]),
    Route("/sandbox/cloud/numbers/{phone_number_id}", unregister_number, methods=["DELETE"]),
]
# Last in the routing table: "/{id}" would otherwise swallow /ping, /health...
graph_routes = [
    Route("/me", get_me, methods=["GET"]),
    Route("/{phone_number_id}/messages", post_messages, methods=["POST"]),
    Route("/{phone_number_id}", get_number, methods=["GET"]),
]

"""The WAHA HTTP dialect of the sandbox (the subset PROTOCOLS.md lists)."""

from __future__ import annotations

import base64
import re
import secrets
import string
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pooling.bridges.sandbox.state import Sandbox, WahaSession

CHAT_ID = re.compile(r"^[\w.+-]+@(c\.us|g\.us|lid|newsletter)$")
MEDIA_ENDPOINTS = ("sendImage", "sendFile", "sendVoice", "sendVideo")


def nest_error(status: int, message: str) -> JSONResponse:
    # NestJS's error shape, which is what WAHA answers with.
    phrases = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict", 422: "Unprocessable Entity"}
    return JSONResponse({"statusCode": status, "message": message, "error": phrases.get(status, "Error")}, status)


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def sandbox_of(request: Request) -> Sandbox:
    return request.app.state.sandbox


async def json_body(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "body must be a JSON object")
    return body


def find_session(request: Request, name: str | None) -> WahaSession:
    session = sandbox_of(request).sessions.get(name or "")
    if session is None:
        raise BadRequest(404, f"Session \"{name}\" does not exist")
    return session


def working_session(request: Request, name: str | None) -> WahaSession:
    session = find_session(request, name)
    if session.status != "WORKING":
        raise BadRequest(422, f"Session status is not as expected. Try again later or restart the session. "
                              f"Session: '{session.name}', status: {session.status}, expected: WORKING")
    return session


def chat_of(body: dict) -> str:
    chat_id = body.get("chatId")
    if not isinstance(chat_id, str) or not CHAT_ID.match(chat_id):
        raise BadRequest(400, "chatId must look like <digits>@c.us")
    return chat_id


async def create_session(request: Request) -> Response:
    sandbox = sandbox_of(request)
    body = await json_body(request)
    name = str(body.get("name") or f"session_{secrets.token_hex(4)}")
    if name in sandbox.sessions:
        return nest_error(409, f"Session '{name}' already exists. Use PUT to update it.")
    if sandbox.full:
        return nest_error(422, f"Sandbox worker is full: capacity {sandbox.config.capacity} sessions reached")
    config = body.get("config") if isinstance(body.get("config"), dict) else {}
    session = sandbox.add_session(name, config)
    if body.get("start", True):
        sandbox.start(session)
    return JSONResponse(session.public(), 201)


async def list_sessions(request: Request) -> Response:
    show_all = request.query_params.get("all") == "true"
    sessions = sandbox_of(request).sessions.values()
    return JSONResponse([s.public() for s in sessions if show_all or s.status != "STOPPED"])


async def get_session(request: Request) -> Response:
    return JSONResponse(find_session(request, request.path_params["session"]).public())


async def session_action(request: Request) -> Response:
    sandbox = sandbox_of(request)
    session = find_session(request, request.path_params["session"])
    action = request.path_params["action"]
    if action == "start":
        sandbox.start(session)
    elif action == "stop":
        sandbox.stop(session)
    elif action == "restart":
        sandbox.stop(session)
        sandbox.start(session)
    elif action == "logout":
        sandbox.logout(session)
    else:
        return nest_error(404, f"Cannot POST {request.url.path}")
    return JSONResponse(session.public(), 201)


async def delete_session(request: Request) -> Response:
    sandbox_of(request).delete(find_session(request, request.path_params["session"]))
    return JSONResponse({}, 200)


async def get_me(request: Request) -> Response:
    return JSONResponse(find_session(request, request.path_params["session"]).me)


def _qr_session(request: Request) -> WahaSession:
    session = find_session(request, request.path_params["session"])
    if session.status != "SCAN_QR_CODE":
        raise BadRequest(422, f"Can get QR code only in SCAN_QR_CODE status. The current status - {session.status}")
    return session


async def get_qr(request: Request) -> Response:
    session = _qr_session(request)
    if request.query_params.get("format") == "raw":
        return JSONResponse({"value": session.qr_value})
    png = sandbox_of(request).qr_png(session)
    if "application/json" in request.headers.get("accept", "") and "image/" not in request.headers.get("accept", ""):
        return JSONResponse({"mimetype": "image/png", "data": base64.b64encode(png).decode()})
    return Response(png, media_type="image/png")


async def request_code(request: Request) -> Response:
    session = _qr_session(request)
    body = await json_body(request)
    if not re.fullmatch(r"\d{6,15}", str(body.get("phoneNumber", ""))):
        raise BadRequest(400, "phoneNumber must be 6 to 15 digits")
    letters = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))
    # The simulated phone then "enters" it: the same auto-scan timer (or POST /sandbox/scan) completes it.
    return JSONResponse({"code": f"{letters[:4]}-{letters[4:]}", "session": session.name})


def _sent(request: Request, session: WahaSession, chat_id: str, text: str, has_media: bool = False) -> JSONResponse:
    message_id = sandbox_of(request).waha_sent(session, chat_id, text)
    return JSONResponse({"id": message_id, "timestamp": int(time.time()), "from": (session.me or {}).get("id"),
                         "to": chat_id, "fromMe": True, "body": text, "hasMedia": has_media, "ack": 0,
                         "ackName": "PENDING", "sandbox": True}, 201)


async def send_text(request: Request) -> Response:
    body = await json_body(request)
    session = working_session(request, body.get("session"))
    chat_id = chat_of(body)
    if not isinstance(body.get("text"), str) or not body["text"]:
        raise BadRequest(400, "text must be a non-empty string")
    return _sent(request, session, chat_id, body["text"])


async def send_media(request: Request) -> Response:
    body = await json_body(request)
    session = working_session(request, body.get("session"))
    chat_id = chat_of(body)
    file = body.get("file")
    if not isinstance(file, dict) or not (file.get("url") or file.get("data")):
        raise BadRequest(400, "file.url or file.data is required")
    endpoint = request.url.path.rsplit("/", 1)[-1]
    label = {"sendImage": "image", "sendFile": "document", "sendVoice": "audio", "sendVideo": "video"}[endpoint]
    if file.get("data"):
        try:
            data, via = base64.b64decode(str(file["data"]), validate=True), "data"
        except ValueError:
            raise BadRequest(400, "file.data must be base64") from None
    else:
        data, via = await sandbox_of(request).fetch_link(str(file["url"])), "url"
    sandbox_of(request).record_received(dialect="waha", session=session.name, to=chat_id, kind=label, via=via,
                                        data=data, mimetype=str(file.get("mimetype") or ""),
                                        filename=str(file.get("filename") or ""))
    return _sent(request, session, chat_id, str(body.get("caption") or f"[{label}]"), has_media=True)


async def send_location(request: Request) -> Response:
    body = await json_body(request)
    session = working_session(request, body.get("session"))
    chat_id = chat_of(body)
    if not all(isinstance(body.get(k), (int, float)) for k in ("latitude", "longitude")):
        raise BadRequest(400, "latitude and longitude must be numbers")
    return _sent(request, session, chat_id, str(body.get("title") or "[location]"))


async def reaction(request: Request) -> Response:
    body = await json_body(request)
    session = working_session(request, body.get("session"))
    if not isinstance(body.get("messageId"), str) or not body["messageId"]:
        raise BadRequest(400, "messageId is required")
    if not isinstance(body.get("reaction"), str):
        raise BadRequest(400, "reaction must be a string (empty removes it)")
    chat_id = body["messageId"].split("_")[1] if body["messageId"].count("_") >= 2 else "status@broadcast"
    message_id = sandbox_of(request).waha_sent(session, chat_id, body["reaction"], with_acks=False)
    return JSONResponse({"id": message_id, "sandbox": True}, 200)


async def send_seen(request: Request) -> Response:
    body = await json_body(request)
    working_session(request, body.get("session"))
    chat_of(body)
    return JSONResponse({}, 201)


routes = [
    Route("/api/sessions", create_session, methods=["POST"]),
    Route("/api/sessions", list_sessions, methods=["GET"]),
    Route("/api/sessions/{session}", get_session, methods=["GET"]),
    Route("/api/sessions/{session}", delete_session, methods=["DELETE"]),
    Route("/api/sessions/{session}/me", get_me, methods=["GET"]),
    Route("/api/sessions/{session}/{action}", session_action, methods=["POST"]),
    Route("/api/{session}/auth/qr", get_qr, methods=["GET"]),
    Route("/api/{session}/auth/request-code", request_code, methods=["POST"]),
    Route("/api/sendText", send_text, methods=["POST"]),
    *[Route(f"/api/{name}", send_media, methods=["POST"]) for name in MEDIA_ENDPOINTS],
    Route("/api/sendLocation", send_location, methods=["POST"]),
    Route("/api/reaction", reaction, methods=["PUT"]),
    Route("/api/sendSeen", send_seen, methods=["POST"]),
]

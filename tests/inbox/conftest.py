"""Sockets against the real ASGI application (origin check, session auth, routing)
on the real Redis channel layer. Data is committed (transactional tests): the
consumer reads the database from its own thread."""

from __future__ import annotations

import contextlib

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from waplatform.asgi import application

TIMEOUT = 5


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


@contextlib.asynccontextmanager
async def inbox_socket(path: str = "/ws/inbox/", *, user=None, headers=(), origin: str = "http://testserver"):
    """An open communicator; the close handshake runs on the way out, whatever happened."""
    all_headers = [(b"host", b"testserver"), *headers]
    if origin:
        all_headers.append((b"origin", origin.encode()))
    if user is not None:
        all_headers.append((b"cookie", (await sync_to_async(session_cookie)(user)).encode()))
    communicator = WebsocketCommunicator(application, path, headers=all_headers)
    try:
        yield communicator
    finally:
        await communicator.disconnect()


async def connect_ready(communicator) -> dict:
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    hello = await communicator.receive_json_from(timeout=TIMEOUT)
    assert hello["type"] == "inbox.ready", hello
    return hello


async def connect_refused(communicator) -> tuple[dict, dict]:
    """The refusal frame and the close that follows it."""
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    refusal = await communicator.receive_json_from(timeout=TIMEOUT)
    close = await communicator.receive_output(timeout=TIMEOUT)
    assert close["type"] == "websocket.close"
    return refusal, close


@pytest.fixture(autouse=True)
def _inbox_settings(settings):
    settings.ALERT_WEBHOOK_URL = ""

"""While draining, the web process refuses new requests but still serves the bridges' callbacks."""

import asyncio
import json

import pytest

from waplatform import draining


def call(app, path: str) -> tuple[int, dict, dict]:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, json.loads(body or b"{}")


async def served(scope, receive, send):
    """Stands in for Django: answers 200 and records that it was reached."""
    served.paths.append(scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


@pytest.fixture
def app():
    served.paths = []
    yield draining.DrainingMiddleware(served)
    draining.state.draining = False


def test_before_draining_everything_is_served(app):
    assert call(app, "/api/v1/messages")[0] == 200
    assert served.paths == ["/api/v1/messages"]


def test_while_draining_new_requests_get_503_json_with_retry_after(app):
    draining.start_draining()

    status, headers, body = call(app, "/api/v1/messages")

    assert status == 503 and body["code"] == "shutting_down" and body["detail"]
    assert int(headers["retry-after"]) > 0 and headers["connection"] == "close"
    assert served.paths == []


def test_while_draining_bridge_callbacks_are_still_served_and_probes_say_so(app):
    draining.start_draining()

    assert call(app, "/hooks/waha/1/")[0] == 200
    assert served.paths == ["/hooks/waha/1/"]
    assert call(app, "/readyz")[0] == 503
    status, _, body = call(app, "/healthz")
    assert status == 200 and body == {"status": "draining", "in_flight": 0}

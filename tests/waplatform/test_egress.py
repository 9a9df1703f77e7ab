"""The egress guard against real local HTTP servers standing for the attacker's targets.

Addresses on 127.0.0.0/8 stand for the operator's network. Where a test needs
one hop to get through (a redirect, an oversize body), the operator allow-list
(EGRESS_ALLOWED_NETWORKS) admits 127.0.0.1 only; 127.0.0.2 stays refused.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests import egress_names
from tests.bridges.conftest import free_port
from waplatform import egress


class Target:
    """A local HTTP server that records every request it gets."""

    def __init__(self, host: str):
        self.host, self.port = host, free_port()
        self.hits: list[tuple[str, dict]] = []
        self.redirect_to = ""
        self.body = b"ok"
        self.drip_seconds = 0.0
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                target.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                if target.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", target.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(target.body)))
                self.end_headers()
                try:
                    for i in range(0, len(target.body), 100):
                        self.wfile.write(target.body[i:i + 100])
                        self.wfile.flush()
                        time.sleep(target.drip_seconds)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what the limits are for

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"


@pytest.fixture
def targets() -> Iterator[list[Target]]:
    started: list[Target] = []
    yield started
    for target in started:
        target.server.shutdown()
        target.server.server_close()


@pytest.fixture(autouse=True)
def _production_policy(settings):
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    settings.EGRESS_ALLOWED_NETWORKS = []
    settings.EGRESS_RESOLVER = egress_names.RESOLVER
    yield
    egress_names.reset()


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:6379/", "127.0.0.1 is a loopback address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "a loopback address (inside the IPv6 address)"),
    ("http://10.1.2.3/", "a private address"),
    ("http://192.168.0.1/", "a private address"),
    ("http://[fd12::1]/", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://0.0.0.0/", "an unspecified address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://100.64.0.1/", "a non-public address"),
])
def test_private_addresses_are_refused_and_the_error_says_why_and_what_to_set(url, why):
    with pytest.raises(egress.EgressRefused) as refused:
        egress.check_url(url)
    assert why in str(refused.value)
    assert "set EGRESS_ALLOW_PRIVATE_URLS=true to allow private addresses in development" in str(refused.value)


def test_a_name_is_refused_for_the_address_it_resolves_to():
    egress_names.answer("internal.tenant.test", ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(egress.EgressRefused) as refused:
        egress.check_url("https://internal.tenant.test/hook")
    assert str(refused.value) == ("'internal.tenant.test' resolves to 127.0.0.1, a loopback address; "
                                  "set EGRESS_ALLOW_PRIVATE_URLS=true to allow private addresses in development.")


@pytest.mark.parametrize("url", ["ftp://example.test/a", "file:///etc/passwd", "gopher://x/", "/relative"])
def test_only_http_and_https(url):
    with pytest.raises(egress.EgressRefused, match="http"):
        egress.check_url(url)


def test_public_addresses_pass_and_the_switch_opens_private_ones(settings):
    egress_names.answer("shop.example.test", ["93.184.216.34"])
    assert egress.check_url("https://shop.example.test/hook") == "https://shop.example.test/hook"
    settings.EGRESS_ALLOW_PRIVATE_URLS = True
    assert egress.check_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook"


def test_nothing_reaches_a_private_server_through_the_guarded_client(targets):
    targets.append(attacker := Target("127.0.0.1"))
    with egress.guarded_client() as client, pytest.raises(egress.EgressRefused, match="loopback"):
        client.get(attacker.url)
    assert attacker.hits == []


def test_the_connection_goes_to_the_address_checked_with_one_lookup_and_keeps_the_name(targets, settings):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    targets.append(server := Target("127.0.0.1"))
    # A rebinding name: the first answer is allowed, every later one is not. One lookup per request.
    egress_names.answer("rebind.test", ["127.0.0.1"], ["127.0.0.2"])

    with egress.guarded_client() as client:
        response = client.get(f"http://rebind.test:{server.port}/x")
        with pytest.raises(egress.EgressRefused, match="127.0.0.2, a loopback address"):
            client.get(f"http://rebind.test:{server.port}/y")

    assert response.status_code == 200
    assert [(path, headers["host"]) for path, headers in server.hits] == [("/x", f"rebind.test:{server.port}")]
    assert egress_names.LOOKUPS["rebind.test"] == 2


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(targets, settings):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the first hop, standing for a public host
    targets.append(first := Target("127.0.0.1"))
    targets.append(inside := Target("127.0.0.2"))
    first.redirect_to = inside.url + "admin"

    with egress.guarded_client(follow_redirects=True) as client, \
            pytest.raises(egress.EgressRefused, match="127.0.0.2 is a loopback address"):
        client.get(first.url)

    assert len(first.hits) == 1 and inside.hits == []


def test_an_oversize_response_is_cut(targets, settings):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.EGRESS_MAX_RESPONSE_BYTES = 1000
    targets.append(server := Target("127.0.0.1"))
    server.body = b"x" * 50_000

    with egress.guarded_client() as client, pytest.raises(egress.EgressRefused, match="larger than 1000 bytes"):
        client.get(server.url)


def test_a_dripping_response_is_cut_at_the_total_time_limit(targets, settings):
    settings.EGRESS_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.EGRESS_TOTAL_TIMEOUT_SECONDS = 0.5
    targets.append(server := Target("127.0.0.1"))
    server.body, server.drip_seconds = b"x" * 2000, 0.1  # 2 s in all, each read well inside any read timeout

    started = time.monotonic()
    with egress.guarded_client(timeout=5) as client, pytest.raises(egress.EgressRefused, match="longer than"):
        client.get(server.url)
    assert time.monotonic() - started < 1.5


def test_a_refusal_is_an_httpx_error_but_not_a_transport_error():
    # Callers catch httpx.HTTPError; retry logic retries TransportError, and a refusal will not change.
    assert issubclass(egress.EgressRefused, httpx.HTTPError)
    assert not issubclass(egress.EgressRefused, httpx.TransportError)


def test_the_old_setting_name_is_read_as_a_deprecated_alias():
    def setting_with(env: dict) -> str:
        clean = {k: v for k, v in os.environ.items() if "ALLOW_PRIVATE_URLS" not in k}
        code = "import waplatform.settings as s; print(s.EGRESS_ALLOW_PRIVATE_URLS)"
        return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                              check=True).stdout.strip()

    assert setting_with({"WEBHOOK_ALLOW_PRIVATE_URLS": "true"}) == "True"
    assert setting_with({"WEBHOOK_ALLOW_PRIVATE_URLS": "true", "EGRESS_ALLOW_PRIVATE_URLS": "false"}) == "False"
    assert setting_with({"DEBUG": "false"}) == "False"

"""deploy/nginx in front of two real daphne web processes, through TLS.

Debian's nginx (apt-get install nginx: `make test-deps` and .ci/run do) runs
as the current user from a temporary prefix, with the configuration rendered
by deploy/nginx/render.py as an operator would, and a certificate made here.
The web processes are the platform's own daphne on the test database.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import json
import os
import pwd
import re
import shutil
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import daphne_command, shared_database_url, stop_group, wait_answering
from waplatform.embedded_redis import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
RENDER = REPO_ROOT / "deploy" / "nginx" / "render.py"
CLOUD_SECRET = "edge-test-app-secret"

# Transactional: the daphne processes read what a test writes, so it must be committed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(120), pytest.mark.django_db(transaction=True)]


def nginx_binary() -> str:
    path = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if path is None:
        pytest.skip("nginx is not installed: apt-get install nginx (`make test-deps` and .ci/run install it)")
    return path


def self_signed_certificate(folder: Path, addresses: tuple[str, ...] = ("127.0.0.1",)) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([*(x509.IPAddress(ipaddress.ip_address(a)) for a in addresses),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "edge.crt", folder / "edge.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class Edge:
    url: str
    prefix: Path
    tls: ssl.SSLContext
    web: list[subprocess.Popen]
    web_ports: list[int]
    nginx: subprocess.Popen | None = None

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=self.tls, timeout=15, **kwargs)

    def access_log(self) -> list[str]:
        return (self.prefix / "logs" / "access.log").read_text().splitlines()


def _spawn(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


@dataclass
class Account:
    tenant_id: int
    tenant_slug: str
    key: str
    burst_key: str


@pytest.fixture
def account(transactional_db) -> Account:
    from django.utils import timezone

    from messaging.models import Contact, Conversation
    from tenants.services import issue_api_key
    from tests.factories import TenantFactory

    tenant = TenantFactory()
    # Two conversations, so a page of one has a `next` link: a URL Django builds itself.
    for n in range(2):
        contact = Contact.objects.create(tenant=tenant, wa_id=f"4915100000{n}")
        Conversation.objects.create(tenant=tenant, contact=contact, last_message_at=timezone.now())
    return Account(tenant_id=tenant.id, tenant_slug=tenant.slug, key=issue_api_key(tenant=tenant).plaintext,
                   burst_key=issue_api_key(tenant=tenant, name="burst").plaintext)


@pytest.fixture(scope="module")
def edge(django_db_setup, tmp_path_factory) -> Iterator[Edge]:
    """Two daphne processes and nginx, for the whole module: starting them is most of its time."""
    nginx = nginx_binary()
    root = tmp_path_factory.mktemp("edge")
    web_ports = [free_port(), free_port()]
    https_port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "waplatform.settings",
        "DATABASE_URL": shared_database_url(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Without --proxy-headers daphne leaves the scheme alone: only this setting makes Django see https.
        "TRUST_X_FORWARDED_PROTO": "true",
        "CLOUD_API_APP_SECRET": CLOUD_SECRET,
        "STATIC_ROOT": str(root / "static"),
        "LOG_LEVEL": "WARNING",
    }
    web = [
        _spawn(daphne_command(port), env, root / f"daphne-{port}.log")
        for port in web_ports
    ]
    cert, cert_key = self_signed_certificate(root)
    prefix = root / "nginx"
    settings = {
        "WEB_UPSTREAMS": ",".join(f"127.0.0.1:{p}" for p in web_ports),
        "HTTPS_LISTEN": f"127.0.0.1:{https_port}",
        "HTTP_LISTEN": f"127.0.0.1:{free_port()}",
        "TLS_CERTIFICATE": str(cert),
        "TLS_CERTIFICATE_KEY": str(cert_key),
        "NGINX_USER": pwd.getpwuid(os.getuid()).pw_name,
        "WORKER_PROCESSES": "1",
        "DAEMON": "off",
        # Low enough for a burst of a few dozen requests to pass them; the per-address API limit
        # stays high, since every request of this module comes from 127.0.0.1.
        "API_RATE_PER_KEY": "5r/s",
        "API_BURST_PER_KEY": "10",
        "API_RATE_PER_ADDRESS": "500r/s",
        "API_BURST_PER_ADDRESS": "1000",
        "HOOKS_RATE_PER_ADDRESS": "5r/s",
        "HOOKS_BURST_PER_ADDRESS": "10",
        "MAX_BODY_SIZE": "64k",
    }
    render = subprocess.run([sys.executable, str(RENDER), "--prefix", str(prefix),
                             *[f"--set={k}={v}" for k, v in settings.items()]],
                            capture_output=True, text=True, timeout=30)
    assert render.returncode == 0, render.stderr
    edge = Edge(url=f"https://127.0.0.1:{https_port}", prefix=prefix,
                tls=ssl.create_default_context(cafile=str(cert)), web=web, web_ports=web_ports)
    try:
        for process, port in zip(web, web_ports):
            wait_answering(process, f"http://127.0.0.1:{port}/healthz", log=root / f"daphne-{port}.log")
        edge.nginx = _spawn([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                             "-e", str(prefix / "logs" / "error.log")], env, root / "nginx.out")
        wait_answering(edge.nginx, f"{edge.url}/healthz", log=prefix / "logs" / "error.log", verify=edge.tls)
        yield edge
    finally:
        for process in [*web, *([edge.nginx] if edge.nginx else [])]:
            stop_group(process)


def test_api_call_through_tls_reaches_django_which_builds_https_urls(edge, account):
    with edge.client(headers={"Authorization": f"Bearer {account.key}"}) as client:
        tenant = client.get("/api/v1/tenant")
        page = client.get("/api/v1/conversations", params={"page_size": 1})

    assert tenant.status_code == 200, tenant.text
    assert tenant.json()["slug"] == account.tenant_slug
    assert tenant.headers["strict-transport-security"].startswith("max-age=")
    assert page.status_code == 200, page.text
    assert page.json()["next"].startswith(f"{edge.url}/api/v1/conversations?"), page.json()


def test_websocket_connects_through_tls(edge, account):
    from websockets.sync.client import connect

    with edge.client(headers={"Authorization": f"Bearer {account.key}"}) as client:
        ticket = client.post("/api/v1/ws-ticket").json()["ticket"]
    with connect(f"wss://127.0.0.1:{edge.url.rsplit(':', 1)[1]}/ws/inbox/?ticket={ticket}", ssl=edge.tls,
                 origin=edge.url, open_timeout=15, close_timeout=5) as socket:
        hello = json.loads(socket.recv(timeout=15))

    assert hello["type"] == "inbox.ready" and hello["tenant"] == account.tenant_id


def test_webhook_intake_reaches_django_with_the_body_intact(edge):
    body = json.dumps({"object": "whatsapp_business_account", "entry": []}).encode()
    signature = "sha256=" + hmac.new(CLOUD_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with edge.client(headers={"Content-Type": "application/json"}) as client:
        signed = client.post("/hooks/cloud/", content=body, headers={"X-Hub-Signature-256": signature})
        forged = client.post("/hooks/cloud/", content=body, headers={"X-Hub-Signature-256": "sha256=00"})

    # The signature is over the raw body: a 200 means nginx passed it byte for byte.
    assert signed.status_code == 200, signed.text
    assert signed.json()["received"] == 0
    assert forged.status_code == 401 and forged.json()["code"] == "invalid_signature"


def _burst(edge: Edge, method: str, path: str, count: int, **kwargs) -> list[httpx.Response]:
    with edge.client(limits=httpx.Limits(max_connections=count)) as client, ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: client.request(method, path, **kwargs), range(count)))


def _assert_edge_429(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["retry-after"] == "1"
    assert response.json()["code"] == "rate_limited"  # nginx's, not the platform's "throttled"
    assert response.json()["detail"]


def test_a_burst_of_api_calls_with_one_key_is_answered_429_json(edge, account):
    answers = _burst(edge, "GET", "/api/v1/tenant", 30, headers={"Authorization": f"Bearer {account.burst_key}"})
    with edge.client(headers={"Authorization": f"Bearer {account.key}"}) as client:
        other_key = client.get("/api/v1/tenant")

    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) >= 10 and codes.count(429) >= 10, codes
    for response in answers:
        if response.status_code == 429:
            _assert_edge_429(response)
    # The limit is per key: the same tenant's other key, from the same address, still gets in.
    assert other_key.status_code == 200


def test_a_burst_on_the_bridge_intake_from_one_address_is_answered_429_json(edge):
    answers = _burst(edge, "POST", "/hooks/cloud/", 30, content=b"{}", headers={"X-Hub-Signature-256": "sha256=00"})

    codes = sorted(r.status_code for r in answers)
    # 401: the platform's answer (unsigned); 429: the edge's, before Django is bothered.
    assert codes.count(401) >= 5 and codes.count(429) >= 10, codes
    for response in answers:
        if response.status_code == 429:
            _assert_edge_429(response)


def test_a_body_over_the_limit_is_refused_at_the_edge_as_json(edge, account):
    with edge.client(headers={"Authorization": f"Bearer {account.key}"}) as client:
        response = client.post("/api/v1/messages", content=b"x" * (200 * 1024),
                               headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


# Last in the module: it kills the web processes the other tests use.
def test_a_killed_web_process_is_retried_on_the_other_and_both_down_is_a_json_502(edge, account):
    with edge.client(headers={"Authorization": f"Bearer {account.key}"}) as client:
        before = [client.get("/healthz").status_code for _ in range(4)]
        served_by = {line.split("upstream=")[1].split()[0] for line in edge.access_log() if "GET /healthz" in line}
        assert len(served_by) == 2, served_by  # round robin: both were serving

        edge.web[0].send_signal(signal.SIGKILL)
        edge.web[0].wait(timeout=10)
        after = [client.get("/api/v1/tenant").status_code for _ in range(10)]
        retried = [line for line in edge.access_log()
                   if "GET /api/v1/tenant" in line and re.search(r"upstream=\S+, \S+", line)]

        edge.web[1].send_signal(signal.SIGKILL)
        edge.web[1].wait(timeout=10)
        down = client.get("/api/v1/tenant")

    assert before == [200] * 4
    assert after == [200] * 10
    # The request that met the dead process went on to the live one (nginx's proxy_next_upstream).
    assert retried and f"127.0.0.1:{edge.web_ports[0]}" in retried[0], edge.access_log()[-12:]
    assert down.status_code == 502
    assert down.headers["content-type"].startswith("application/json")
    assert down.headers["retry-after"] == "5"
    assert down.json()["code"] == "bad_gateway"

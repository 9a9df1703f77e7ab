"""Schemathesis against the platform served by a real daphne, over the public schema.

Every operation of /api/schema/ gets generated requests (valid and invalid ones)
with a test tenant's API key; each answer must be no server error and must be
what the schema says: a documented status code, the documented content type,
a body that matches. Bounded: a few examples per operation, derandomized so
a run is repeatable, a few hundred requests in all.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tenants.models import Tier
from tenants.services import issue_api_key
from tests.factories import ConversationFactory, TenantFactory, WebhookEndpointFactory
from tests.http_receiver import free_port
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_PER_OPERATION = {GenerationMode.POSITIVE: 4, GenerationMode.NEGATIVE: 3}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# daphne reads what the tests write: it must be committed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(300), pytest.mark.django_db(transaction=True)]


def database_url() -> str:
    """The test database, for the daphne process (the test run created it already)."""
    from django.db import connection

    s = connection.settings_dict
    if s["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{s['NAME']}"
    auth = f"{quote(s['USER'] or '')}:{quote(s['PASSWORD'] or '')}@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def service_account_file(folder: Path) -> Path:
    """A Firebase service-account key of our own making: custom tokens are signed locally, nothing calls Google."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = folder / "service-account.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "demo-fuzz", "private_key_id": "fuzz", "private_key": pem,
        "client_email": "mirror@demo-fuzz.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }))
    return path


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    with django_db_blocker.unblock():
        url = database_url()
    if ":memory:" in url or "mode=memory" in url:
        pytest.skip("daphne needs a database file or server it can open itself")
    port = free_port()
    folder = tmp_path_factory.mktemp("fuzz")
    log = folder / "daphne.log"
    # Every feature on, so every operation can answer its success: the Firestore mirror's
    # token endpoint too (an emulator address nothing listens on keeps Google out of it).
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "waplatform.settings", "DATABASE_URL": url,
           "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING", "EGRESS_ALLOW_PRIVATE_URLS": "false",
           "FIRESTORE_PROJECT": "demo-fuzz", "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}",
           "FIREBASE_SERVICE_ACCOUNT_FILE": str(service_account_file(folder))}
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                    "waplatform.asgi:application"], cwd=REPO_ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, log.read_text()
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=60, message="daphne answering")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        print(log.read_text()[-5000:])  # noqa: T201  (shown only when a test failed)


def tenant_with_objects(*, rate_limit: int):
    tenant = TenantFactory()
    Tier.objects.filter(pk=tenant.tier_id).update(api_rate_limit_per_minute=rate_limit)
    ConversationFactory(tenant=tenant)
    WebhookEndpointFactory(tenant=tenant)
    return tenant


def test_every_operation_answers_what_the_schema_says(server):
    # given a tenant with objects of its own, so some generated ids find something
    tenant = tenant_with_objects(rate_limit=100_000)
    headers = {"Authorization": f"Bearer {issue_api_key(tenant=tenant).plaintext}"}
    schema = schemathesis.openapi.from_url(f"{server}/api/schema/?format=json")
    session = requests.Session()
    failures: dict[str, str] = {}
    calls = 0

    # when each operation gets its generated requests
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, examples in EXAMPLES_PER_OPERATION.items():

            @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(base_url=server, session=session, headers=headers, checks=CHECKS,
                                       timeout=30)

            try:
                call()
            except Unsatisfiable:  # negative mode, on an operation with nothing to make invalid
                pass
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001  (collected: one report for them all)
                failures[f"{operation.label} ({mode})"] = str(exc)[:3000]

    # then none failed, and the run was as large as meant
    assert failures == {}, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert calls >= 200


def test_a_throttled_answer_carries_its_reason_phrase_and_retry_after(server):
    tenant = tenant_with_objects(rate_limit=1)
    key = issue_api_key(tenant=tenant).plaintext
    host, port = server.removeprefix("http://").split(":")

    statuses = []
    for _ in range(2):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.request("GET", "/api/v1/tenant", headers={"Authorization": f"Bearer {key}"})
        answer = connection.getresponse()
        statuses.append((answer.status, answer.reason, answer.getheader("Retry-After"), answer.read()))
        connection.close()

    assert statuses[0][0] == 200
    status, reason, retry_after, body = statuses[1]
    assert (status, reason) == (429, "Too Many Requests")
    assert int(retry_after) > 0 and b'"code":"throttled"' in body

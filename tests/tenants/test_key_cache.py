"""API keys are cached per web process; a revocation or suspension still holds on the very next request.

Two real daphne processes on the test database and the test Redis, as the `web` role runs
them: process B has the key cached (it has answered with it), the change is made through
process A (or a service in this process), and the next request to B must see it. Before the
version stamp, B would have answered from its copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tenants.services import issue_api_key, suspend_tenant
from tests.processes import shared_database_url, stop_group
from tests.waiting import wait_until
from waplatform.embedded_redis import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
# daphne reads what the tests write: it must be committed.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(180), pytest.mark.django_db(transaction=True)]


@pytest.fixture
def two_web_processes(tmp_path) -> Iterator[tuple[str, str]]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "waplatform.settings", "DATABASE_URL": shared_database_url(),
           "ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING"}
    processes, urls = [], []
    try:
        for name in ("a", "b"):
            port = free_port()
            with open(tmp_path / f"daphne-{name}.log", "ab") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "waplatform.asgi:application"],
                    cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes):
            def up(url=url, process=process):
                assert process.poll() is None, (tmp_path / "daphne-a.log").read_text() + \
                    (tmp_path / "daphne-b.log").read_text()
                try:
                    return httpx.get(url + "/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False
            wait_until(up, timeout=90, message=f"daphne at {url}")
        yield urls[0], urls[1]
    finally:
        for process in processes:
            stop_group(process)


def get_tenant(url: str, key: str) -> int:
    return httpx.get(url + "/api/v1/tenant", headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code


def test_a_key_revoked_through_one_process_is_refused_by_the_other_on_its_next_request(tenant, two_web_processes):
    # given: process B has answered with the key (it now holds it), and another key of the tenant
    a, b = two_web_processes
    victim = issue_api_key(tenant=tenant, name="leaked")
    admin = issue_api_key(tenant=tenant, name="admin")
    assert [get_tenant(b, victim.plaintext) for _ in range(3)] == [200, 200, 200]

    # when: the tenant revokes it through process A
    revoked = httpx.delete(f"{a}/api/v1/api-keys/{victim.api_key.pk}",
                           headers={"Authorization": f"Bearer {admin.plaintext}"}, timeout=30)

    # then: the very next request to B is refused; the other key still works there
    assert revoked.status_code == 204
    assert get_tenant(b, victim.plaintext) == 401
    assert get_tenant(b, admin.plaintext) == 200


def test_a_suspension_reaches_a_process_that_holds_the_key(tenant, two_web_processes):
    # given: process B holds the key and has accepted a write with it
    _, b = two_web_processes
    key = issue_api_key(tenant=tenant).plaintext
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.post(b + "/api/v1/ws-ticket", headers=headers, timeout=30).status_code == 201

    # when: the operator suspends the tenant (committed in this process)
    suspend_tenant(tenant=tenant)

    # then: B's next write is refused as suspended, reads still answer
    refused = httpx.post(b + "/api/v1/ws-ticket", headers=headers, timeout=30)
    assert refused.status_code == 403
    assert refused.json()["code"] == "tenant_suspended"
    assert get_tenant(b, key) == 200


def test_a_held_key_answers_without_reading_the_database(api_client, django_assert_num_queries):
    assert api_client.get("/api/v1/tenant").status_code == 200

    with django_assert_num_queries(0):
        again = api_client.get("/api/v1/tenant")

    assert again.status_code == 200


def test_a_lost_stamp_drops_the_held_keys(tenant, api_client):
    """Redis emptied (restart without persistence, failover): a new stamp, so nothing held survives it."""
    from waplatform.redis import get_cache_redis

    assert api_client.get("/api/v1/tenant").status_code == 200
    get_cache_redis().flushdb()
    type(tenant).objects.filter(pk=tenant.pk).update(name="Renamed behind the cache's back")

    assert api_client.get("/api/v1/tenant").json()["name"] == "Renamed behind the cache's back"


def test_the_tenant_body_written_by_hand_is_the_one_its_fields_describe(tenant, api_client):
    """TenantSerializer writes its body without building its fields (per-request cost); it must not drift from them."""
    from rest_framework import serializers

    from tenants.serializers import TenantSerializer

    tenant.refresh_from_db()
    by_fields = serializers.ModelSerializer.to_representation(TenantSerializer(tenant), tenant)

    assert api_client.get("/api/v1/tenant").json() == by_fields

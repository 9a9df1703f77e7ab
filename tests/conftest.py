import os

import pytest
from rest_framework.test import APIClient

from tenants.services import issue_api_key
from tests.factories import OperatorFactory, TenantFactory
from tests.http_receiver import http_receiver  # noqa: F401  (a fixture for every test)


def pytest_configure(config):
    if not os.environ.get("REDIS_URL"):
        raise pytest.UsageError(
            "Tests need a real Redis: run `make test`, or "
            "`python -m waplatform.embedded_redis -- pytest ...`, or set REDIS_URL."
        )


@pytest.fixture(autouse=True, scope="session")
def _no_bridge_outlives_the_run():
    """Sandbox bridges the platform started for local slots during the run stop with it.

    A test that places a tenant provisions a local slot: a bridge process in a session
    of its own (as in production, where it outlives a worker's restart). Nothing in the
    test run stops it, so without this every run left some behind on the machine.
    """
    yield
    import psutil

    run_id = os.environ.get("WAP_TEST_RUN_ID")
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "pooling.bridges.sandbox" in (process.info["cmdline"] or []) \
                    and run_id and process.environ().get("WAP_TEST_RUN_ID") == run_id:
                process.kill()
        except psutil.Error:
            pass


@pytest.fixture(autouse=True)
def _clean_redis():
    """Every test starts on an empty Redis: queues, throttles and caches included."""
    from waplatform.redis import distinct_urls, probe_client

    for url in distinct_urls().values():
        probe_client(url).flushdb()
    yield


@pytest.fixture
def tenant(db):
    return TenantFactory()


@pytest.fixture
def other_tenant(db):
    return TenantFactory()


@pytest.fixture
def operator(db):
    """A platform staff user (admin and operations pages)."""
    return OperatorFactory()


@pytest.fixture
def staff_client(client, operator):
    """Django's test client, signed in as the operator."""
    client.force_login(operator)
    return client


def client_for(tenant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issue_api_key(tenant=tenant).plaintext}")
    return client


@pytest.fixture
def api_client(tenant):
    return client_for(tenant)


@pytest.fixture
def other_api_client(other_tenant):
    return client_for(other_tenant)

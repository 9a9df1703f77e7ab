"""PostgreSQL streaming replication under the platform: analytics reads on the replica, the rest on the primary.

A primary and a streaming replica (pg_basebackup -R) started here on free loopback ports,
independent of the suite's own database, and the platform's daphne started on them with
DATABASE_URL, DATABASE_REPLICA_URL and DATABASE_POOL=true, exactly as an operator sets them.
Replay is paused on the replica, so a write on the primary is visible on the primary and not
on the replica: the Costs page (analytics) still shows the old value while the admin (primary)
shows the new one. The Health page shows the replica's lag; with the replica stopped, the Costs
page answers from the primary.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.deploy.postgres_replica import Cluster, pg_bin
from tests.waiting import wait_until
from waplatform.embedded_redis import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def _pg_bin() -> Path:
    found = pg_bin()
    if found is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): apt-get install postgresql "
                    "(.ci/run does)")
    return found


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = Cluster(_pg_bin())
    try:
        cluster.create()
        yield cluster
    finally:
        cluster.remove()


def _platform_env(cluster: Cluster, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    # A shared database needs its keys from the environment (waplatform.E001/E002): this run's own.
    env.update({"SECRET_KEY": settings.SECRET_KEY, "SECRETS_ENCRYPTION_KEYS": ",".join(settings.SECRETS_ENCRYPTION_KEYS)})
    env.update({"DATABASE_URL": cluster.url(cluster.primary_port),
                "DATABASE_REPLICA_URL": cluster.url(cluster.replica_port), "DATABASE_POOL": "true",
                "DATABASE_REPLICA_RETRY_SECONDS": "1", "DJANGO_SETTINGS_MODULE": "waplatform.settings", **extra})
    return env


def _login(client: httpx.Client, username: str, password: str) -> None:
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = client.post("/admin/login/?next=/admin/", data={
        "csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"})
    assert answer.status_code == 302, answer.text[-2000:]


def test_analytics_reads_go_to_the_replica_and_fall_back_to_the_primary_when_it_stops(cluster, tmp_path):
    # The schema and demo data on the primary first; the replica is cloned from it.
    setup = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c",
         "from django.core.management import call_command; call_command('migrate', verbosity=0); "
         "call_command('seed_demo')"],
        cwd=REPO_ROOT, env=_platform_env(cluster, DATABASE_REPLICA_URL=""), capture_output=True, text=True,
        timeout=180)
    assert setup.returncode == 0, setup.stderr[-3000:]
    username, password = re.search(r"Demo operator: (\S+) / (\S+)", setup.stdout).groups()
    cluster.start_replica()
    assert cluster.sql(cluster.replica_port, "SELECT pg_is_in_recovery()") == [(True,)]

    port = free_port()
    log = open(tmp_path / "daphne.log", "wb")
    web = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                            "waplatform.asgi:application"], cwd=REPO_ROOT, env=_platform_env(cluster),
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30, follow_redirects=False)

        def answers():
            assert web.poll() is None, (tmp_path / "daphne.log").read_text()[-3000:]
            try:
                return client.get("/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, timeout=60, interval=0.2, message="daphne answering")
        _login(client, username, password)
        [(old_name,)] = cluster.sql(cluster.primary_port, "SELECT name FROM tenants_tenant WHERE slug = 'acme'")
        assert old_name in client.get("/admin/operations/costs/").text

        # Given replay paused on the replica, a rename on the primary reaches only the primary.
        cluster.sql(cluster.replica_port, "SELECT pg_wal_replay_pause()")
        cluster.sql(cluster.primary_port, "UPDATE tenants_tenant SET name = 'Renamed on the primary' "
                                          "WHERE slug = 'acme'")

        costs = client.get("/admin/operations/costs/")
        csv = client.get("/admin/operations/costs/?format=csv")
        admin_list = client.get("/admin/tenants/tenant/")
        health = client.get("/admin/operations/health/")

        # The Costs page reads the replica (still the old name); the admin reads the primary.
        assert costs.status_code == 200 and old_name in costs.text and "Renamed on the primary" not in costs.text
        assert csv.status_code == 200 and "acme" in csv.text
        assert "Renamed on the primary" in admin_list.text
        lag = re.search(r'id="replica-lag">([^<]*)<', health.text).group(1)
        assert re.fullmatch(r"\d+\.\d s behind the primary", lag), lag

        # When the replica stops, the same page answers from the primary.
        cluster.stop("replica")
        fallback = client.get("/admin/operations/costs/")
        health_after = client.get("/admin/operations/health/")
        metrics = client.get("/metrics")

        assert fallback.status_code == 200 and "Renamed on the primary" in fallback.text
        assert "unreachable, analytics reads on the primary" in health_after.text
        assert metrics.status_code == 200 and "wap_pool_slots" in metrics.text
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=20)
        log.close()

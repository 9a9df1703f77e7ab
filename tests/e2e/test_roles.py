"""WAP_ROLES: a host runs its share of the platform, against a Redis it does not own."""

import json
import os
import subprocess
import sys

import httpx
import pytest
from websockets.sync.client import connect

from tests.e2e.platform import BASE_DIR, Launcher, alive, command_line, wait_for
from waplatform.embedded_redis import EmbeddedRedis, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server(tmp_path):
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


def running(launcher: Launcher) -> list[str]:
    return [command_line(c) for c in launcher.children() if alive(c)]


def publish_from_another_process(launcher: Launcher, redis_url: str, event_type: str) -> None:
    """An event published by a process that is neither web process (as a worker publishes)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(REDIS_URL=redis_url, WAP_VAR_DIR=str(launcher.var_dir))
    code = ("from tenants.models import Tenant; from waplatform.events import publish_event; "
            f"publish_event(tenant_id=Tenant.objects.get(slug='acme').id, type='{event_type}', data={{}})")
    subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR, env=env, check=True,
                   capture_output=True, timeout=120)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def next_event(socket, event_type: str) -> dict:
    while True:
        frame = json.loads(socket.recv(timeout=30))
        if frame.get("type") == event_type:
            return frame


def test_a_web_host_runs_two_daphne_and_nothing_else_and_groups_span_both(tmp_path, redis_server):
    launcher = Launcher(tmp_path, WAP_ROLES="web", WEB_PROCESSES="2", REDIS_URL=redis_server.url)
    try:
        launcher.wait_ready()
        second = f"127.0.0.1:{launcher.port + 1}"
        wait_for(lambda: answers(f"http://{second}/readyz"), timeout=60, what="the second web process ready",
                 interval=0.2)
        commands = running(launcher)
        key = launcher.api_key()
        with connect(f"ws://127.0.0.1:{launcher.port}/ws/inbox/", origin=launcher.base,
                     additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=15) as on_first, \
                connect(f"ws://{second}/ws/inbox/", origin=f"http://{second}",
                        additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=15) as on_second:
            # Subscribed to the tenant's group on both before anything is published.
            next_event(on_first, "inbox.ready"), next_event(on_second, "inbox.ready")
            publish_from_another_process(launcher, redis_server.url, "roles.test")
            received = [next_event(on_first, "roles.test"), next_event(on_second, "roles.test")]
    finally:
        launcher.close()
    assert len([c for c in commands if "daphne" in c]) == 2, commands
    assert not [c for c in commands if "run_worker_pool" in c or "run_scheduler" in c or "redis-server" in c], commands
    assert received[0]["id"] == received[1]["id"]
    assert f"WEB_UPSTREAMS=127.0.0.1:{launcher.port},{second}" in launcher.output()


def test_a_worker_host_runs_only_the_pools_it_is_given(tmp_path, redis_server):
    launcher = Launcher(tmp_path, WAP_ROLES="worker:high+ai", REDIS_URL=redis_server.url)
    try:
        wait_for(lambda: len([c for c in running(launcher) if "run_worker_pool" in c]) == 2, timeout=60,
                 what="two worker pools")
        wait_for(lambda: "Ctrl-C stops everything" in launcher.output(), timeout=30, what="the launcher started")
        commands = running(launcher)
    finally:
        launcher.close()
    pools = sorted(c.split("run_worker_pool ")[1].split()[0] for c in commands if "run_worker_pool" in c)
    assert pools == ["ai", "high"]
    assert not [c for c in commands if "daphne" in c or "run_scheduler" in c or "redis-server" in c], commands
    assert "roles on this host: worker:high+ai" in launcher.output()


def test_an_unknown_role_or_queue_stops_the_launcher_with_what_is_valid(tmp_path):
    launcher = Launcher(tmp_path, WAP_ROLES="web,worker:urgent")
    try:
        assert launcher.process.wait(timeout=60) != 0
    finally:
        launcher.close()
    assert "unknown queue urgent" in launcher.output() and "high, medium, low" in launcher.output()

"""The launcher supervises its children (docs/operations.md, "Process supervision and shutdown").

Real processes on free ports, a real embedded Redis; every wait is on a condition.
"""

import signal
import threading
import time

import httpx
import pytest

from tests.e2e.platform import Api, Launcher, alive, command_line, wait_for

pytestmark = pytest.mark.integration


def test_killed_redis_and_scheduler_are_restarted_and_the_api_says_503_meanwhile(tmp_path):
    # A slower first restart than the default (10-20 s), so that the outage outlasts the probes
    # below even when /readyz is slow to say so on a loaded machine.
    launcher = Launcher(tmp_path, RESTART_BACKOFF_BASE_SECONDS="20")
    try:
        launcher.wait_ready()
        api = Api(launcher.base, launcher.api_key())
        api.working_session()
        before = api.send("before the outage")
        assert before.status_code == 202, before.text
        api.wait_delivered(before.json()["id"], timeout=60, what="first delivery")

        redis = launcher.child("redis-server")
        redis.kill()

        def readyz_names_redis():
            response = httpx.get(f"{launcher.base}/readyz", timeout=5)
            return response.status_code == 503 and "redis" in response.json()["checks"] \
                and response.json()["checks"]["redis"] != "ok"

        wait_for(readyz_names_redis, timeout=10, what="/readyz 503 naming redis")
        during = api.client.get("/tenant")
        assert during.status_code == 503, during.text
        assert during.headers["content-type"] == "application/json"
        assert during.json()["code"] == "redis_unavailable" and during.json()["detail"]
        assert int(during.headers["retry-after"]) > 0

        wait_for(lambda: "redis exited with -9; restarting in" in launcher.output(), timeout=5,
                 what="the restart logged")
        wait_for(lambda: httpx.get(f"{launcher.base}/readyz", timeout=5).status_code == 200, timeout=60,
                 what="/readyz 200 after the restart")
        assert alive(launcher.child("redis-server")) and launcher.child("redis-server").pid != redis.pid

        after = api.send("after the outage")
        assert after.status_code == 202, after.text
        api.wait_delivered(after.json()["id"], timeout=60, what="a message sent after recovery delivered")

        scheduler = launcher.child("run_scheduler")
        scheduler.kill()
        wait_for(lambda: "scheduler exited with -9; restarting in" in launcher.output(), timeout=5,
                 what="the scheduler restart logged")
        restarted = wait_for(lambda: (c := launcher.child("run_scheduler")).pid != scheduler.pid and c, timeout=60,
                             what="a new scheduler process")
        assert alive(restarted)
        assert launcher.process.poll() is None
    finally:
        launcher.close()


def test_sigterm_under_load_stops_everything_within_15_s_and_says_whether_it_was_clean(tmp_path):
    launcher = Launcher(tmp_path)
    try:
        launcher.wait_ready()
        api = Api(launcher.base, launcher.api_key())
        api.working_session()

        stop_load = threading.Event()
        statuses: list[int] = []

        def load():
            # Its own client: one httpx.Client per thread.
            client = Api(launcher.base, launcher.api_key()).client
            while not stop_load.is_set():
                try:
                    response = client.post("/messages", json={"to": "447700900123", "type": "text",
                                                              "text": {"body": "under load"}})
                    statuses.append(response.status_code)
                except httpx.HTTPError:
                    statuses.append(0)
                    time.sleep(0.05)

        threads = [threading.Thread(target=load, daemon=True) for _ in range(6)]
        for thread in threads:
            thread.start()
        wait_for(lambda: statuses.count(202) >= 30, timeout=60, what="30 messages accepted under load")

        processes = launcher.children() + launcher.bridge_processes()
        names = " ".join(command_line(p) for p in processes)
        assert "daphne" in names and "redis-server" in names and "pooling.bridges.sandbox" in names

        sent_at = time.monotonic()
        launcher.process.send_signal(signal.SIGTERM)
        wait_for(lambda: launcher.process.poll() is not None and not any(alive(p) for p in processes),
                 timeout=15, what="every process gone after SIGTERM")
        elapsed = time.monotonic() - sent_at
        stop_load.set()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        launcher.close()

    output = launcher.output()
    print(f"SIGTERM under load: every process gone in {elapsed:.1f} s; {statuses.count(202)} accepted")
    had_to_kill = "had to kill" in output
    assert (launcher.process.returncode == 0) == (not had_to_kill), output[-3000:]
    assert "all processes stopped in" in output
    # Nothing answered the load with a server error: refusals while draining are 503s.
    assert not [s for s in statuses if s >= 500 and s != 503], sorted(set(statuses))

"""A launcher started as `make run` starts it, on free ports, for the e2e tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.waiting import wait_until
from waplatform import pidfiles
from waplatform.embedded_redis import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
# daphne's access log: `127.0.0.1:58488 - - [01/Dec/2026:09:41:59] "GET /api/v1/messages/2" 200 489`
ACCESS_LOG = re.compile(r'\] "(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+" \d{3} ')


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.05):
    return wait_until(predicate, timeout=timeout, interval=interval, message=what)


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


class Launcher:
    def __init__(self, tmp_path: Path, **env_overrides: str):
        # Given ports and var directory: a restart of a stopped launcher, as an operator does it.
        self.port = int(env_overrides.pop("PORT", 0)) or free_port()
        self.redis_port = int(env_overrides.pop("EMBEDDED_REDIS_PORT", 0)) or free_port()
        self.var_dir = Path(env_overrides.pop("WAP_VAR_DIR", tmp_path / "var"))
        self.log_path = tmp_path / "launcher.log"
        # PROMETHEUS_MULTIPROC_DIR too: the launcher empties its metrics folder at start, and the
        # one inherited from this test process is the one the rest of the suite reads.
        env = {k: v for k, v in os.environ.items()
               if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR")}
        env.update(PORT=str(self.port), EMBEDDED_REDIS_PORT=str(self.redis_port), WAP_VAR_DIR=str(self.var_dir),
                   WORKER_SCALE="0.1", **env_overrides)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen([sys.executable, "-m", "waplatform.launcher"], cwd=BASE_DIR, env=env,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 120) -> None:
        def ready():
            assert self.process.poll() is None, f"launcher exited before it was ready\n{self.output()[-3000:]}"
            try:
                return httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout=timeout, what="/readyz 200", interval=0.2)

    def api_key(self, slug: str = "acme") -> str:
        found = re.search(rf"Created demo tenant {slug}; API key \(shown once\): (\S+)", self.output())
        assert found, self.output()[-3000:]
        return found.group(1)

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def child(self, marker: str) -> psutil.Process:
        """The launcher's direct child whose command line contains `marker`."""
        def find():
            return next((c for c in psutil.Process(self.process.pid).children()
                         if marker in command_line(c) and alive(c)), None)

        return wait_for(find, timeout=30, what=f"a running {marker}")

    def bridge_processes(self) -> list[psutil.Process]:
        found = []
        for pid_file in (self.var_dir / "run" / "bridges").glob("*.pid"):
            if (process := pidfiles.recorded_process(pid_file)) is not None:
                found.append(process)
        return found

    def close(self) -> None:
        # Shown by pytest only when the test failed: what the platform said is the first clue.
        # Access-log lines (a test polling) would push the platform's own words out of the tail.
        notable = [line for line in self.output().splitlines()
                   if not ACCESS_LOG.search(line) and "Too Many Requests" not in line]
        print(f"--- the launcher's last output ({self.log_path}), access log left out ---\n"
              + "\n".join(notable)[-8000:])
        if self.process.poll() is None:
            for process in self.children() + self.bridge_processes():
                try:
                    process.kill()
                except psutil.Error:
                    pass
            self.process.kill()
            self.process.wait()
        self._log.close()


class Api:
    def __init__(self, base: str, key: str):
        self.client = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def working_session(self, timeout: float = 90) -> None:
        assert self.client.post("/session/start", json={}).status_code in (200, 202)
        wait_for(lambda: self.client.get("/session").json().get("status") == "WORKING", timeout=timeout,
                 what="session WORKING", interval=0.3)

    def send(self, text: str) -> httpx.Response:
        return self.client.post("/messages", json={"to": "447700900123", "type": "text", "text": {"body": text}})

    def status_of(self, message_id) -> str:
        return self.client.get(f"/messages/{message_id}").json().get("status")

    def wait_delivered(self, message_id, *, timeout: float, what: str) -> None:
        """Poll the message (once a second: the API's rate limit) until delivered (or already read: the
        sandbox's contact reads at once); fail with what it last said."""
        last: list[dict] = [{}]

        def delivered() -> bool:
            answer = self.client.get(f"/messages/{message_id}")
            if answer.status_code == 200:
                last[0] = answer.json()
            return last[0].get("status") in ("delivered", "read")

        try:
            wait_for(delivered, timeout=timeout, what=what, interval=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the message last read: {last[0]}") from None


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    process.send_signal(sig)

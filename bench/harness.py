"""What every benchmark runs on: its own Redis, database, daphne, worker pools and
sandbox workers, all on loopback, all stopped at the end.

The driver (this process) sets its environment before Django loads, so the
driver and every subprocess read the same settings from the same variables
(REDIS_URL, DATABASE_URL, WAP_VAR_DIR, ...), exactly as the launcher does.

Every process is started in its own session and, on Linux, with a parent-death
signal, so Ctrl-C, an exception or even a SIGKILL of the driver leaves nothing
behind; `Harness.close()` stops them in order (platform first, Redis last).
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from waplatform.embedded_redis import EmbeddedRedis, free_port

BASE_DIR = Path(__file__).resolve().parent.parent
SANDBOX_KEY = "bench-sandbox-key"
CLOUD_APP_SECRET = "bench-cloud-app-secret"


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the child gets SIGTERM if the driver dies without cleaning up.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except OSError:
        pass
    os.setsid()


def wait_until(predicate: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    kind: str  # platform | sandbox
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def rss(self) -> int:
        total = 0
        for process in self.tree():
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def pss(self) -> int:
        """Proportional set size: pages shared with a pool's parent counted once, not per worker."""
        total = 0
        for process in self.tree():
            try:
                total += process.memory_full_info().pss
            except (psutil.Error, AttributeError):
                pass
        return total

    def stop(self, grace: float = 10.0) -> None:
        if not self.alive():
            return
        members = self.tree()
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        for process in members:  # a worker pool's children, if the pool did not take them down
            try:
                process.kill()
            except psutil.Error:
                pass
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait(5)

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and its live children (a pool's workers), so far."""
        total = 0.0
        for process in self.tree():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


RUNTIME_VENV_PYTHON = BASE_DIR / ".venv-runtime" / "bin" / "python"


def platform_python() -> str:
    """BENCH_PLATFORM_PYTHON, else .venv-runtime's python (`make bench` builds it from
    requirements.txt alone), else this interpreter."""
    chosen = os.environ.get("BENCH_PLATFORM_PYTHON")
    if chosen:
        return chosen
    return str(RUNTIME_VENV_PYTHON) if RUNTIME_VENV_PYTHON.exists() else sys.executable


class Harness:
    """One per `python -m bench` run. A fresh database per benchmark, one Redis flushed between them."""

    def __init__(self, *, tiny: bool = False, keep_tmp: bool = False, database_url: str | None = None):
        self.tiny = tiny
        self.keep_tmp = keep_tmp
        self.tmp = Path(tempfile.mkdtemp(prefix="wap-bench-"))
        self.out_dir = Path(__file__).resolve().parent
        self.var = self.tmp / "var"
        self.logs = self.tmp / "logs"
        self.logs.mkdir(parents=True)
        self.redis: EmbeddedRedis | None = None
        self.procs: list[Proc] = []
        self.web_port = free_port()
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        # "" = SQLite; None = BENCH_DATABASE_URL's (python -m bench runs SQLite, then PostgreSQL in a child).
        self.database_url_base = os.environ.get("BENCH_DATABASE_URL", "") if database_url is None else database_url
        self._pg_copy: str | None = None
        self._template_db: Path | None = None
        self._db_count = 0
        self._pending: list[tuple[str, Callable[[], bool], float]] = []
        # The platform's processes run as deployed when a virtualenv of requirements.txt alone is
        # given: the test one adds tools (rich, pygments) that httpx then imports in every process.
        self.platform_python = platform_python()

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> "Harness":
        self.redis = EmbeddedRedis(port=free_port(), data_dir=self.tmp / "redis", appendonly=False).start()
        env = {
            "REDIS_URL": self.redis.url,
            "DATABASE_URL": self.database_url_base or f"sqlite:///{self.tmp / 'template.sqlite3'}",
            "WAP_VAR_DIR": str(self.var),
            "PROMETHEUS_MULTIPROC_DIR": str(self.var / "prometheus"),
            "PORT": str(self.web_port),
            "PUBLIC_BASE_URL": self.web_url,
            "SECRET_KEY": "bench-" + os.urandom(16).hex(),
            # Explicit, as on any shared database (check waplatform.E002): BENCH_DATABASE_URL may be PostgreSQL.
            "SECRETS_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            # Load: the cap protects a real deployment from unbounded backlogs; a
            # benchmark preloads thousands of jobs on purpose.
            "QUEUE_MAX_WAITING": "10000000",
            "ALERT_QUEUE_WAITING": "10000000",
            # Static slots only: the bench starts its own sandbox workers and knows their pids.
            "POOL_PROVISIONER": "static",
            "CLOUD_API_APP_SECRET": CLOUD_APP_SECRET,
            "CLOUD_API_VERIFY_TOKEN": "bench-verify",
            "SANDBOX_AUTO_SCAN_SECONDS": "0.1",
            "DJANGO_SETTINGS_MODULE": "waplatform.settings",
        }
        for name in ("WAP_TEST_RUN_ID", "EMBEDDED_REDIS_PORT"):
            os.environ.pop(name, None)
        os.environ.update(env)
        (self.var / "prometheus").mkdir(parents=True, exist_ok=True)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", "--noinput", verbosity=0)
        if not self.database_url_base:
            from django.db import connections

            connections.close_all()
            self._template_db = self.tmp / "template.sqlite3"
        return self

    def fresh_database(self) -> None:
        """A new SQLite file copied from the migrated template (PostgreSQL: retire what the last benchmark left)."""
        from django.db import connections

        connections.close_all()
        if self._template_db is None:
            if self._fresh_postgres_copy():
                return
            from pooling.models import Slot

            Slot.objects.exclude(state=Slot.State.RETIRED).update(state=Slot.State.RETIRED)
            return
        self._db_count += 1
        path = self.tmp / f"bench-{self._db_count}.sqlite3"
        shutil.copyfile(self._template_db, path)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        connections["default"].settings_dict["NAME"] = str(path)
        from django.conf import settings

        settings.DATABASES["default"]["NAME"] = str(path)

    def _fresh_postgres_copy(self) -> bool:
        """PostgreSQL: a new database per benchmark, `CREATE DATABASE ... TEMPLATE` the migrated one
        (the SQLite file copy's equivalent); the previous copy is dropped. False when the role may
        not create databases: then the benchmarks share the migrated one, as before."""
        import psycopg
        from django.conf import settings
        from django.db import connections

        base = self.database_url_base
        template = base.rsplit("/", 1)[1].split("?")[0]
        admin_url = base.replace("postgres://", "postgresql://", 1).rsplit("/", 1)[0] + "/postgres"
        self._db_count += 1
        name = f"{template}_bench_{self._db_count}"
        try:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                if self._pg_copy:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self._pg_copy}" WITH (FORCE)')
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        except psycopg.Error as exc:
            sys.stderr.write(f"[bench] no database copy ({exc}); benchmarks share {template}\n")
            return False
        self._pg_copy = name
        url = base.rsplit("/", 1)[0] + "/" + name
        os.environ["DATABASE_URL"] = url
        for config in (connections["default"].settings_dict, settings.DATABASES["default"]):
            config["NAME"] = name
        return True

    def reset_redis(self) -> None:
        from waplatform.redis import get_redis

        get_redis().flushdb()

    def stop_processes(self) -> None:
        # Platform first (workers finish their job), sandboxes after, so nothing posts into the void.
        for kind in ("platform", "sandbox"):
            for proc in reversed([p for p in self.procs if p.kind == kind]):
                proc.stop()
        self.procs.clear()

    def close(self) -> None:
        try:
            self.stop_processes()
        finally:
            if self.redis:
                self.redis.stop()
            if not self.keep_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "Harness":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- processes ------------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], *, kind: str = "platform", env: dict | None = None, **extra) -> Proc:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            popen = subprocess.Popen(
                args, cwd=BASE_DIR, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )
        proc = Proc(name=name, popen=popen, kind=kind, log=log, extra=extra)
        self.procs.append(proc)
        return proc

    def _check_alive(self, proc: Proc) -> None:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")

    def start_web(self, env: dict | None = None, *, port: int | None = None) -> Proc:
        """daphne, as the Procfile runs it (another `port`: one more web process). Not waited for: call ready()."""
        port = port or self.web_port
        name = "daphne" if port == self.web_port else f"daphne-{port}"
        proc = self.spawn(name, [self.platform_python, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                 "waplatform.asgi:application"], env=env, base_url=f"http://127.0.0.1:{port}")

        def up() -> bool:
            self._check_alive(proc)
            try:
                return httpx.get(proc.extra["base_url"] + "/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        self._pending.append(("daphne /healthz", up, 60))
        return proc

    def start_workers(self, queue: str, num: int, env: dict | None = None) -> Proc:
        """`manage.py run_worker_pool QUEUE --num-workers N`, as in the Procfile. Not waited for: call ready()."""
        proc = self.spawn(f"workers-{queue}", [self.platform_python, "manage.py", "run_worker_pool", queue,
                                               "--num-workers", str(num)], env=env, queue=queue, num=num)
        from rq import Worker

        from waplatform.queues import get_queue

        q = get_queue(queue)

        def listening() -> bool:
            self._check_alive(proc)
            return len(Worker.all(queue=q)) >= num

        self._pending.append((f"{num} worker(s) on {queue}", listening, 90))
        return proc

    def ready(self) -> None:
        """Wait for everything started so far: processes boot side by side, not one after another."""
        pending, self._pending = self._pending, []
        for what, predicate, timeout in pending:
            wait_until(predicate, timeout=timeout, interval=0.1, what=what)

    def start_scheduler(self) -> Proc:
        return self.spawn("scheduler", [self.platform_python, "manage.py", "run_scheduler", "waplatform.cron"])

    def start_sandbox(self, *, capacity: int, ack_delay: float = 0.2, echo_delay: float = 1.0,
                      auto_scan_seconds: float = 0.1) -> Proc:
        port = free_port()
        proc = self.spawn(
            f"sandbox-{port}",
            [sys.executable, "-m", "pooling.bridges.sandbox", "--port", str(port), "--capacity", str(capacity),
             f"--api-key={SANDBOX_KEY}", "--auto-scan-seconds", str(auto_scan_seconds),
             "--ack-delay", str(ack_delay), "--echo-delay", str(echo_delay)],
            kind="sandbox", env={"DJANGO_SETTINGS_MODULE": ""}, base_url=f"http://127.0.0.1:{port}",
        )
        base_url = proc.extra["base_url"]

        def up() -> bool:
            self._check_alive(proc)
            try:
                return httpx.get(base_url + "/ping", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, timeout=30, what="sandbox /ping")
        return proc

    def rss(self, kind: str) -> int:
        return sum(p.rss() for p in self.procs if p.kind == kind)

    def pss(self, kind: str) -> int:
        return sum(p.pss() for p in self.procs if p.kind == kind)

    def rss_by_process(self) -> dict[str, int]:
        return {p.name: p.rss() for p in self.procs}

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds so far per process (tree), Redis and this bench process included: diff two
        readings to see which process a workload's CPU went to."""
        seconds = {proc.name: proc.cpu_seconds() for proc in self.procs}
        for name, pid in (("redis", self.redis.process.pid if self.redis and self.redis.process else None), ("bench", os.getpid())):
            try:
                times = psutil.Process(pid).cpu_times()
                seconds[name] = times.user + times.system
            except (psutil.Error, TypeError, ValueError):
                pass
        return seconds

    def logs_of(self, prefix: str) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.procs if p.name.startswith(prefix))


# --- platform set-up shared by the benchmarks (through the apps' services) -------------------


def bench_tier(name: str, **overrides):
    """A tier of its own for one benchmark, the standard tier's values with `overrides`.

    A row like the ones operators edit in admin; the benchmark says which limits
    it raises and why.
    """
    from tenants.default_tiers import DEFAULT_TIERS
    from tenants.models import Tier

    row = {**DEFAULT_TIERS[0], "name": name, "display_name": f"Bench {name}", **overrides}
    return Tier.objects.create(**row)


def make_tenant(tier, name: str):
    from tenants.services import create_tenant

    tenant, key = create_tenant(name=name, tier=tier)
    return tenant, key.plaintext


def register_sandbox_slot(sandbox: Proc, *, tier, capacity: int):
    from pooling import services as pooling

    return pooling.register_static_slot(dialect="sandbox", base_url=sandbox.extra["base_url"],
                                        api_key=SANDBOX_KEY, tier=tier, capacity=capacity)


def start_working_sessions(tenants, *, timeout: float = 120, phone_number_ids: dict | None = None) -> None:
    """start_session for each tenant, then wait until every session reports WORKING.

    Needs daphne (the sandbox reports WORKING by signed webhook) and a
    `maintenance` worker (the start job calls the bridge).
    """
    from pooling import services as pooling
    from pooling.models import WhatsAppSession

    for tenant in tenants:
        number = (phone_number_ids or {}).get(tenant.pk, "")
        if number:
            pooling.assign_number(phone_number_id=number, tenant=tenant)
        pooling.start_session(tenant=tenant, phone_number_id=number)
    ids = [t.pk for t in tenants]
    wait_until(lambda: WhatsAppSession.objects.filter(tenant_id__in=ids, status="WORKING").count() == len(ids),
               timeout=timeout, interval=0.2, what=f"{len(ids)} session(s) WORKING")


def dump(obj) -> str:
    return json.dumps(obj, indent=2, default=str)

"""`make run`: the whole platform on one machine, supervised, stopped in an order that drains.

WAP_ROLES picks this host's share (waplatform/roles.py; unset = all of it):
`redis` (the embedded one, unless REDIS_URL is set), `web` (WEB_PROCESSES
daphne on PORT, PORT+1, ...; migrate, collectstatic and seed_demo run with
it), `worker[:QUEUE+QUEUE]`, `scheduler` (the Redis-leased one), `bridges`
(manage.py run_bridge_agent: serves bridges@WAP_HOST, where this host's sandbox
bridge workers are started, checked and stopped; they are stopped with it).

1. Redis: REDIS_URL if given, else an embedded server under var/redis.
2. migrate; the previous run's local slots taken back (new bridge processes for
   the same Slot rows: pooling.takeback); collectstatic, seed_demo.
3. The processes of the Procfile, under waplatform.supervisor: daphne (HTTP +
   WebSocket), one rq WorkerPool per queue, and rq's CronScheduler. A child
   that exits is restarted with backoff (the embedded Redis too, on its AOF);
   the others reconnect to it by themselves.
4. Ctrl-C or SIGTERM stops them in phases (docs/operations.md, "Process
   supervision and shutdown"): the web process drains (new requests get 503,
   in-flight ones finish, bridge callbacks are still served), sandbox bridges
   stop and deliver their last callbacks, then web and workers (warm
   shutdown), the scheduler, Redis. Each phase has a bound; what outlives it
   is killed, said so in the log, and the exit code is then 1, not 0.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# Stop budget per phase; their sum (14.5 s) keeps a stop under load within 15 s.
SHUTDOWN_DRAIN_SECONDS = _seconds("SHUTDOWN_DRAIN_SECONDS", 3)
SHUTDOWN_BRIDGE_SECONDS = _seconds("SHUTDOWN_BRIDGE_SECONDS", 3)
# A host without the web role waits this long for another host to migrate before it gives up.
MIGRATIONS_WAIT_SECONDS = _seconds("MIGRATIONS_WAIT_SECONDS", 600)
SHUTDOWN_PROCESS_SECONDS = _seconds("SHUTDOWN_PROCESS_SECONDS", 5)
SHUTDOWN_SCHEDULER_SECONDS = _seconds("SHUTDOWN_SCHEDULER_SECONDS", 3)
SHUTDOWN_REDIS_SECONDS = _seconds("SHUTDOWN_REDIS_SECONDS", 2)
RESTART_BACKOFF_BASE_SECONDS = _seconds("RESTART_BACKOFF_BASE_SECONDS", 1)
RESTART_BACKOFF_CAP_SECONDS = _seconds("RESTART_BACKOFF_CAP_SECONDS", 30)


def worker_counts(counts: dict[str, int], scale: float) -> dict[str, int]:
    return {queue: max(1, math.ceil(n * scale)) for queue, n in counts.items() if n > 0}


def read_procfile(path: Path) -> list[tuple[str, str]]:
    """Procfile lines as (name, command). A name ending in `-*` is run once per queue
    by the caller (`workers-*` becomes `workers-high`, ... with ${QUEUE} and ${WORKERS})."""
    entries = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        entries.append((name.strip(), command.strip()))
    return entries


def _expand(command: str, variables: dict[str, str]) -> str:
    for key, value in variables.items():
        command = command.replace("${" + key + "}", value)
    return command


def _run_step(args: list[str], env: dict[str, str], *, stop: threading.Event | None = None) -> str:
    """Run a setup step to its end; with `stop`, a stop request ends it (for steps that wait, not write)."""
    process = subprocess.Popen(args, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while stop is not None and process.poll() is None:
        if stop.wait(0.5):
            from waplatform.supervisor import log

            process.terminate()
            process.communicate(timeout=10)
            log(f"stopped while `{shlex.join(args[1:])}` was waiting")
            raise SystemExit(0)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        sys.stderr.write(stdout + stderr)
        raise SystemExit(f"`{shlex.join(args)}` failed with exit code {process.returncode}")
    return stdout


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "waplatform.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    from waplatform.dotenv import load_dotenv

    # Before the first os.environ read below (Redis port, var dir): the same values settings will see.
    load_dotenv()

    from waplatform.supervisor import Child, Supervisor, log

    # Inherited by every process this run starts, bridges included (see _unrecorded_bridges).
    os.environ[RUN_MARKER] = uuid.uuid4().hex
    supervisor = Supervisor(backoff_base=RESTART_BACKOFF_BASE_SECONDS, backoff_cap=RESTART_BACKOFF_CAP_SECONDS)
    # Before anything starts: a signal during migrate still ends in the ordered stop below.
    supervisor.install_signal_handlers()
    var_dir = Path(os.environ.get("WAP_VAR_DIR", BASE_DIR / "var"))
    from waplatform.roles import parse_roles, web_ports

    try:
        # Before settings can be read (they need REDIS_URL): roles are checked, queues after setup.
        roles = parse_roles(os.environ.get("WAP_ROLES"), queue_names=None)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    try:
        if roles.redis and not os.environ.get("REDIS_URL"):
            from waplatform.embedded_redis import EmbeddedRedis

            port = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
            redis_server = EmbeddedRedis(port=port, data_dir=var_dir / "redis")
            redis_server.check_port_free()
            redis_child = supervisor.add(Child(
                "redis", redis_server.command(), cwd=str(BASE_DIR), ready=redis_server.answers_ping,
                capture_output=False,
            ))
            if not redis_server.answers_ping():
                raise SystemExit(f"embedded redis-server did not start (exit {redis_child.process.poll()}); "
                                 f"see {var_dir / 'redis' / 'redis.log'}")
            os.environ["REDIS_URL"] = redis_server.url
            log(f"embedded Redis on {redis_server.url} (data in {var_dir / 'redis'})")

        django.setup()
        from django.conf import settings

        try:
            roles = parse_roles(settings.WAP_ROLES, queue_names=settings.QUEUE_NAMES)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        bridges = roles.bridges

        # Metrics files of processes from an earlier run would be summed with this run's.
        import shutil

        metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True, exist_ok=True)
        # Pid files of a run that was killed name processes that are gone (or pids reused since).
        if bridges:
            _stop_local_bridge_workers(timeout=SHUTDOWN_BRIDGE_SECONDS)
            (_bridges_run_dir() / "stopping").unlink(missing_ok=True)

        env = dict(os.environ)
        python = sys.executable
        manage = str(BASE_DIR / "manage.py")
        demo = ""
        if roles.web:
            _run_step([python, manage, "migrate", "--noinput", "-v0"], env)
        if bridges:
            # Before any worker or health check runs: the previous run's slots get new processes,
            # rather than being found dead and replaced by new slots (pooling.takeback).
            # Without the web role, the schema may not be there yet: another host migrates it.
            wait = [] if roles.web else ["--wait-for-migrations", str(MIGRATIONS_WAIT_SECONDS)]
            if wait:
                log(f"taking back this host's slots once the schema is migrated (up to {MIGRATIONS_WAIT_SECONDS:.0f} s)")
            for line in _run_step([python, manage, "take_back_local_slots", *wait], env,
                                  stop=supervisor.stop_requested).splitlines():
                log(line)
        if roles.web:
            _run_step([python, manage, "collectstatic", "--noinput", "-v0"], env)
            demo = _run_step([python, manage, "seed_demo"], env)

        ports = web_ports(settings.PORT, settings.WEB_PROCESSES) if roles.web else []
        variables = {"PYTHON": python, "PORT": str(settings.PORT), "HOST": settings.BIND_HOST, "MANAGE": manage,
                     "RQ_LOG_LEVEL": settings.RQ_LOG_LEVEL}
        counts = {q: n for q, n in worker_counts(settings.WORKER_COUNTS, settings.WORKER_SCALE).items()
                  if q in roles.queues}
        for name, command in read_procfile(BASE_DIR / "Procfile"):
            if name.endswith("-*"):
                for queue, n in counts.items():
                    qvars = dict(variables, QUEUE=queue, WORKERS=str(n))
                    supervisor.add(Child(name[:-1] + queue, shlex.split(_expand(command, qvars)), env=env,
                                         cwd=str(BASE_DIR)))
            elif name == "web":
                for i, port in enumerate(ports, start=1):
                    wvars = dict(variables, PORT=str(port))
                    supervisor.add(Child(f"web-{i}", shlex.split(_expand(command, wvars)), env=env,
                                         cwd=str(BASE_DIR)))
            elif (name != "scheduler" or roles.scheduler) and (name != "bridges" or roles.bridges):
                supervisor.add(Child(name, shlex.split(_expand(command, variables)), env=env, cwd=str(BASE_DIR)))

        lines = [f"roles on this host: {', '.join(roles.names()) or 'none'}"]
        if ports:
            lines.insert(0, f"WA Platform starting: admin http://127.0.0.1:{settings.PORT}/admin/  "
                            f"inbox http://127.0.0.1:{settings.PORT}/inbox/  "
                            f"API docs http://127.0.0.1:{settings.PORT}/api/docs/")
            lines.append(f"{len(ports)} web processes; for deploy/nginx: "
                         f"WEB_UPSTREAMS={','.join(f'{_reachable(settings.BIND_HOST)}:{p}' for p in ports)}")
            lines += [f"  upstream line: server {_reachable(settings.BIND_HOST)}:{p};" for p in ports]
        lines += demo.strip().splitlines()
        if counts:
            lines.append(f"workers per queue: {counts}")
        lines.append("Ctrl-C stops everything.")
        print("\n" + "".join(f"[launcher] {line}\n" for line in lines), end="", flush=True)
        supervisor.supervise()
        log("stopping (signal received)")
        killed = _stop_in_order(supervisor, settings, ports=ports, bridges=bridges)
    except BaseException:
        # A failed step or a bug here: nothing may outlive the launcher.
        for child in supervisor.children.values():
            child.restart = False
        supervisor.stop_phase(list(supervisor.children), timeout=SHUTDOWN_PROCESS_SECONDS)
        if roles.bridges:
            _stop_local_bridge_workers(timeout=SHUTDOWN_BRIDGE_SECONDS)
        raise
    if killed:
        log(f"stopped, but had to kill: {', '.join(killed)}")
        return 1
    log("stopped cleanly")
    return 0


def _reachable(bind_host: str) -> str:
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "") else bind_host


def _stop_in_order(supervisor, settings, *, ports: list[int], bridges: bool) -> list[str]:
    """The phases of docs/operations.md; returns what had to be killed."""
    from waplatform.supervisor import log

    started = time.monotonic()
    names = list(supervisor.children)
    web = [n for n in names if n.startswith("web-")]
    # The bridges agent stops with the workers: it may be provisioning a bridge right now.
    workers = [n for n in names if n.startswith("workers-") or n == "bridges"]
    for name in names:
        supervisor.children[name].restart = False
    killed: list[str] = []
    for name in web:
        supervisor.signal_child(supervisor.children[name], signal.SIGUSR1)
    if web:
        _wait_for_in_flight_requests(settings, ports=ports, timeout=SHUTDOWN_DRAIN_SECONDS)
    if bridges:
        # Read by the health check (pooling.provisioners.bridges_stopping): bridges stopped
        # on purpose are not slots gone down; removed at the next start.
        _bridges_run_dir().mkdir(parents=True, exist_ok=True)
        (_bridges_run_dir() / "stopping").touch()
        killed += _stop_local_bridge_workers(timeout=SHUTDOWN_BRIDGE_SECONDS)
    killed += supervisor.stop_phase(web + workers, timeout=SHUTDOWN_PROCESS_SECONDS)
    # A provisioning job still running in phase 3 may have started a bridge after phase 2.
    if bridges:
        killed += _stop_local_bridge_workers(timeout=1)
    killed += supervisor.stop_phase(["scheduler"], timeout=SHUTDOWN_SCHEDULER_SECONDS)
    rest = [n for n in names if n not in web + workers + ["scheduler", "redis"]]
    killed += supervisor.stop_phase(rest, timeout=SHUTDOWN_PROCESS_SECONDS)
    killed += supervisor.stop_phase(["redis"], timeout=SHUTDOWN_REDIS_SECONDS)
    log(f"all processes stopped in {time.monotonic() - started:.1f} s")
    return killed


def _wait_for_in_flight_requests(settings, *, ports: list[int], timeout: float) -> None:
    """Until every draining web process reports no request in flight (waplatform.draining)."""
    import logging

    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll is noise in the launcher's output
    host = _reachable(settings.BIND_HOST)
    waiting = [f"http://{host}:{port}/healthz" for port in ports]
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for url in list(waiting):
            try:
                body = httpx.get(url, timeout=max(0.1, deadline - time.monotonic())).json()
                if body.get("status") == "draining" and body.get("in_flight") == 0:
                    waiting.remove(url)
            except (httpx.HTTPError, ValueError):
                pass
        time.sleep(0.05)


def _bridges_run_dir() -> Path:
    return Path(os.environ.get("WAP_VAR_DIR", BASE_DIR / "var")) / "run" / "bridges"


RUN_MARKER = "WAP_LAUNCHER_RUN"


def _unrecorded_bridges(*, known: set[int]) -> list:
    import psutil

    marker = os.environ.get(RUN_MARKER)
    found = []
    for process in psutil.process_iter(["cmdline"]) if marker else []:
        try:
            if process.pid not in known and "pooling.bridges.sandbox" in (process.info["cmdline"] or []) \
                    and process.environ().get(RUN_MARKER) == marker:
                found.append(process)
        except psutil.Error:
            pass
    return found


def _stop_local_bridge_workers(*, timeout: float) -> list[str]:
    """Sandbox bridge workers outlive the jobs that spawned them, not the platform.
    SIGTERM lets each deliver its pending callbacks; pid files go in every case, and a
    pid that now names another process (reused after a crash: start time or command line
    differ from the recorded ones, waplatform.pidfiles) is left alone."""
    import psutil

    from waplatform import pidfiles

    run_dir = _bridges_run_dir()
    processes = []
    for pid_file in run_dir.glob("*.pid"):
        process = pidfiles.recorded_process(pid_file)
        if process is not None:
            try:
                process.terminate()
                processes.append(process)
            except psutil.Error:
                pass
        pid_file.unlink(missing_ok=True)
    # A bridge no pid file names (its spawner died between starting it and recording it, or its
    # record did not match): still this run's, by the marker every process of the run inherits.
    for process in _unrecorded_bridges(known={p.pid for p in processes}):
        try:
            process.terminate()
            processes.append(process)
        except psutil.Error:
            pass

    def running(process) -> bool:
        # A stopped bridge stays a zombie until the worker that spawned it reaps it: gone all the same.
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(running(p) for p in processes):
        time.sleep(0.05)
    alive = [p for p in processes if running(p)]
    killed = []
    for process in alive:
        killed.append(f"bridge {process.pid}")
        try:
            process.kill()
        except psutil.Error:
            pass
    if killed:
        from waplatform.supervisor import log

        log(f"bridges still running {timeout:.0f} s after SIGTERM; killed {', '.join(killed)}")
    return killed


if __name__ == "__main__":
    sys.exit(main())

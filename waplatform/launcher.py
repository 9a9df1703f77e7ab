"""`make run`: the whole platform on one machine, stopped cleanly by Ctrl-C or SIGTERM.

1. Redis: REDIS_URL if given, else an embedded server under var/redis.
2. migrate, collectstatic, seed_demo.
3. The processes of the Procfile, run by honcho: daphne (HTTP + WebSocket),
   one rq WorkerPool per queue, and rq's CronScheduler.
4. On a signal honcho passes SIGTERM to every process group; rq workers
   finish their current job (warm shutdown) and honcho waits up to
   SHUTDOWN_GRACE_SECONDS before killing what is left. Then Redis stops.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SHUTDOWN_GRACE_SECONDS = 60


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


def _run_step(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(args, cwd=BASE_DIR, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"`{shlex.join(args)}` failed with exit code {result.returncode}")
    return result.stdout


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "waplatform.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    redis_server = None
    if not os.environ.get("REDIS_URL"):
        from waplatform.embedded_redis import EmbeddedRedis

        var_dir = Path(os.environ.get("WAP_VAR_DIR", BASE_DIR / "var"))
        port = int(os.environ.get("EMBEDDED_REDIS_PORT", "6390"))
        redis_server = EmbeddedRedis(port=port, data_dir=var_dir / "redis").start()
        os.environ["REDIS_URL"] = redis_server.url
        print(f"[launcher] embedded Redis on {redis_server.url} (data in {var_dir / 'redis'})", flush=True)

    django.setup()
    from django.conf import settings

    # Metrics files of processes from an earlier run would be summed with this run's.
    import shutil

    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)

    env = dict(os.environ)
    python = sys.executable
    manage = str(BASE_DIR / "manage.py")
    try:
        _run_step([python, manage, "migrate", "--noinput", "-v0"], env)
        _run_step([python, manage, "collectstatic", "--noinput", "-v0"], env)
        demo = _run_step([python, manage, "seed_demo"], env)

        import honcho.manager
        from honcho.manager import Manager
        from honcho.printer import Printer

        honcho.manager.KILL_WAIT = SHUTDOWN_GRACE_SECONDS
        manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty()))
        variables = {"PYTHON": python, "PORT": str(settings.PORT), "HOST": settings.BIND_HOST, "MANAGE": manage}
        counts = worker_counts(settings.WORKER_COUNTS, settings.WORKER_SCALE)
        for name, command in read_procfile(BASE_DIR / "Procfile"):
            if name.endswith("-*"):
                for queue, n in counts.items():
                    qvars = dict(variables, QUEUE=queue, WORKERS=str(n))
                    manager.add_process(name[:-1] + queue, _expand(command, qvars), env=env, cwd=str(BASE_DIR))
            else:
                manager.add_process(name, _expand(command, variables), env=env, cwd=str(BASE_DIR))

        admin_url = f"http://127.0.0.1:{settings.PORT}/admin/"
        print(
            f"\n[launcher] WA Platform starting: admin {admin_url}  inbox http://127.0.0.1:{settings.PORT}/inbox/"
            f"  API docs http://127.0.0.1:{settings.PORT}/api/docs/\n"
            + "".join(f"[launcher] {line}\n" for line in demo.strip().splitlines())
            + f"[launcher] workers per queue: {counts}; Ctrl-C stops everything.\n",
            flush=True,
        )
        manager.loop()
        # 130/143: we were asked to stop (Ctrl-C, SIGTERM) and did; anything else is a crash.
        return 0 if manager.returncode in (130, 143) else manager.returncode or 0
    finally:
        _stop_local_bridge_workers()
        if redis_server:
            redis_server.stop()
            print("[launcher] embedded Redis stopped", flush=True)


def _stop_local_bridge_workers() -> None:
    """Sandbox bridge workers outlive the jobs that spawned them, not the platform."""
    run_dir = Path(os.environ.get("WAP_VAR_DIR", BASE_DIR / "var")) / "run" / "bridges"
    for pid_file in run_dir.glob("*.pid"):
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
        pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())

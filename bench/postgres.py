"""A throwaway PostgreSQL cluster for `python -m bench --postgres`, as .ci/run starts one.

Debian's server binaries (/usr/lib/postgresql/<version>/bin), initdb and pg_ctl
run as the `postgres` user when the bench runs as root (PostgreSQL refuses
root); trust auth on 127.0.0.1, a free port, fsync=off (as in CI: the cluster
dies with the run). Removed at the end, whatever happened.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

from waplatform.embedded_redis import free_port


def _pg_bin() -> Path:
    found = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found or not (Path(found[-1]) / "initdb").exists():
        raise SystemExit("--postgres needs Debian's PostgreSQL server (/usr/lib/postgresql/*/bin): "
                         "apt-get install postgresql, or give BENCH_DATABASE_URL")
    return Path(found[-1])


@contextmanager
def throwaway_cluster() -> Iterator[str]:
    """Yields a DATABASE_URL (database `waplatform`, created empty) on a cluster of this run's own."""
    pg_bin = _pg_bin()
    folder = Path(tempfile.mkdtemp(prefix="wap-bench-pg-"))
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(folder, "postgres")

    def run(*args: str) -> None:
        command = [str(pg_bin / args[0]), *args[1:]]
        if as_root:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)}: {done.stdout}{done.stderr}")

    port = free_port()
    data = folder / "data"
    started = False
    try:
        run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
        run("pg_ctl", "-D", str(data), "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 "
            "-c max_connections=300 -c fsync=off", "-l", str(folder / "postgres.log"), "-w", "start")
        started = True
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE waplatform")
        yield f"postgres://postgres@127.0.0.1:{port}/waplatform"
    finally:
        if started:
            try:
                run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(folder, ignore_errors=True)

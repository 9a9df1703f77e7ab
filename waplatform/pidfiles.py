"""Pid files that name a process, not a number.

A pid is reused once its process has exited and been reaped: after a crash or
a reboot, a pid file may name a shell, a database or another user's program.
So a pid file records what was started (the pid, the process's start time and
its command line, read back from the kernel right after the spawn), and
whoever signals or judges a recorded process first checks that the live
process with that pid is the one recorded. Anything else is "not ours": never
signalled, and treated as gone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    create_time: float
    cmdline: tuple[str, ...]


def record(path: Path, pid: int) -> ProcessRecord:
    """Write a pid file for the live process `pid` (call it right after spawning it)."""
    process = psutil.Process(pid)
    entry = ProcessRecord(pid=pid, create_time=process.create_time(), cmdline=tuple(process.cmdline()))
    temporary = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
        json.dump({"pid": entry.pid, "create_time": entry.create_time, "cmdline": list(entry.cmdline)}, file)
    temporary.replace(path)
    return entry


def read(path: Path) -> ProcessRecord | None:
    """The record in a pid file; None if missing or not one (a bare pid from an older version
    says nothing about which process it was, so it is not trusted either)."""
    try:
        data = json.loads(path.read_text())
        return ProcessRecord(pid=int(data["pid"]), create_time=float(data["create_time"]),
                             cmdline=tuple(str(part) for part in data["cmdline"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def matching_process(entry: ProcessRecord | None) -> psutil.Process | None:
    """The live process `entry` recorded, or None if that pid is gone, a zombie, or someone else."""
    if entry is None:
        return None
    try:
        process = psutil.Process(entry.pid)
        # Start times are derived from clock ticks since boot; the same process reads the same.
        if abs(process.create_time() - entry.create_time) > 0.01:
            return None
        if tuple(process.cmdline()) != entry.cmdline or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.Error:
        return None


def recorded_process(path: Path) -> psutil.Process | None:
    return matching_process(read(path))

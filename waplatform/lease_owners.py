"""Who holds a lease, told precisely enough that its death is known at once.

A lease (messaging.leases) only says "until when". A worker killed -9 mid-send
leaves its row leased for the whole lease (90 s), although the process that
held it is gone the moment it dies. So a lease also records its owner: the
host, the pid and start time of the process running the job (our workers are
SimpleWorkers: the job runs in the worker process itself), and the rq worker's
name. The owner is dead when:

- it ran on this host and that process is gone (or the pid now names another
  process: a pid is reused, its start time is not);
- it ran on another host and its rq worker is no longer registered in Redis:
  the pool that runs it deletes a dead worker's registration
  (waplatform.worker_pool). An emptied Redis forgets every registration too,
  so absence is only believed for a lease taken after the current Redis epoch
  began (waplatform.redis_epoch).

Anything unknown is "alive": the lease's own end still covers it.
"""

from __future__ import annotations

import functools
import os
import socket
from datetime import datetime

import psutil
from redis import Redis
from rq import get_current_job
from rq.worker import Worker

HOST = socket.gethostname()
SEPARATOR = "|"


@functools.cache
def _start_time(pid: int) -> float:
    return psutil.Process(pid).create_time()


def current_owner() -> str:
    """This process (and its rq worker, inside a job) as a lease owner."""
    pid = os.getpid()
    job = get_current_job()
    worker = (job.worker_name or "") if job is not None else ""
    return SEPARATOR.join([HOST, str(pid), f"{_start_time(pid):.2f}", worker])


def owner_is_dead(owner: str, *, leased_at: datetime, redis: Redis, epoch_started_at: float | None) -> bool:
    try:
        host, pid, started, worker = owner.split(SEPARATOR)
        pid_number, start_time = int(pid), float(started)
    except ValueError:
        return False  # no owner recorded (a lease from before this field): the lease decides
    if host == HOST:
        return not _same_process_alive(pid_number, start_time)
    if not worker or epoch_started_at is None or leased_at.timestamp() < epoch_started_at:
        return False
    return not redis.exists(Worker.redis_worker_namespace_prefix + worker)


def _same_process_alive(pid: int, start_time: float) -> bool:
    try:
        process = psutil.Process(pid)
        # The recorded start time has two decimals.
        return abs(process.create_time() - start_time) < 0.02 and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False

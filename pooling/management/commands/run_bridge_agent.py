"""The `bridges` role of a host: serve this host's queue and say the host is alive.

Provisioning, health checks and stops of the local bridges this host runs
arrive as jobs on `bridges@<WAP_HOST>` (pooling.hosts); a rq worker pool
serves them here, while a thread beats in Redis so that the other hosts can
tell this one from a dead one.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.management import call_command
from redis.exceptions import RedisError

from pooling import hosts
from waplatform.checks import ServiceCommand
from waplatform.queues import host_queue_name

logger = logging.getLogger(__name__)


def _beat_once() -> None:
    try:
        hosts.beat()
    except RedisError as exc:  # Redis restarting or failing over: the next beat will do
        logger.warning("bridge host beat failed: %s", exc)


def _beat_until(stop: threading.Event) -> None:
    while not stop.is_set():
        _beat_once()
        stop.wait(settings.BRIDGE_HOST_BEAT_SECONDS)


class Command(ServiceCommand):
    help = "Run this host's bridges role: its bridges@<WAP_HOST> queue, and its liveness beat."

    def add_arguments(self, parser):
        parser.add_argument("--num-workers", type=int, default=1)

    def handle(self, *args, num_workers, **options):
        # The first beat here, before the thread: it imports and connects (redis-py loads parts of
        # itself on first use). A fork while the thread is inside an import leaves that module's
        # lock held in every worker, which then hangs on its first job (seen once Django's
        # URL checks, which used to import everything first, stopped running here).
        _beat_once()
        stop = threading.Event()
        # Started before the pool forks its workers: a fork copies only the calling thread,
        # so the beat stays with this (parent) process, whose death is the host's.
        beater = threading.Thread(target=_beat_until, args=(stop,), name="bridge-host-beat", daemon=True)
        beater.start()
        try:
            call_command("run_worker_pool", host_queue_name(settings.WAP_HOST), num_workers=num_workers,
                         verbosity=options["verbosity"])
        finally:
            stop.set()
            try:
                hosts.forget()
            except RedisError:
                pass

"""rq's WorkerPool with a shutdown that cannot hang.

rq's warm shutdown raises StopRequested from the signal handler when the
worker is idle; now and then that exception lands inside a library's broad
`except` and is lost, and the pool's own SIGINT arrives within rq's 1 s
duplicate window and is ignored, so the worker sits in BLMOVE forever (seen
here: 3 of 15 idle workers on one Ctrl-C). The pool therefore repeats its
stop signal every few seconds; PlatformWorker turns a repeated signal into an
exit only while idle, so a busy worker still finishes its job.

The pool parent itself moves delayed and retried jobs onto its queues (rq's
scheduler, run in its monitoring loop), instead of rq's default of a scheduler
child forked from a worker: that child is a full copy of the Django process
(~95 MB RSS each, one per pool), and the parent sits idle between its one-second
checks anyway. A worker killed -9 thus takes no scheduling with it. Should an
older worker still hold a scheduler lock when it dies, the pool releases it
(owner-checked), so whichever scheduler is alive takes over at once.
A dead worker's registration is forgotten at once, which tells that its
leases are orphaned (waplatform.lease_owners).

Each worker opens its Redis connection from the queue's settings (django-rq's
RQ_QUEUES), not from a copy of the pool's: rq rebuilds the parent's connection
from its keyword arguments as a plain pool, which for a Sentinel client would
keep asking the parent's (forked) pool object for the master. Built from
settings, a worker follows a failover as every other client does.
"""

import logging
import os
import signal
import time
from multiprocessing.context import ForkProcess

from django_rq.connection_utils import get_connection
from redis.exceptions import RedisError
from rq.scheduler import RQScheduler
from rq.scripts import release_lock
from rq.worker import Worker
from rq.worker_pool import WorkerPool

from waplatform.workers import PlatformScheduler

logger = logging.getLogger(__name__)

RESIGNAL_EVERY_SECONDS = 3


class PlatformWorkerPool(WorkerPool):
    _scheduler: PlatformScheduler | None = None

    def start(self, burst: bool = False, logging_level: str = "INFO"):
        self._last_stop_signal = 0.0
        try:
            super().start(burst=burst, logging_level=logging_level)
        finally:
            if self._scheduler is not None:
                self._scheduler._survive_redis_outages(self._scheduler.stop)

    def check_workers(self, respawn: bool = True) -> None:
        super().check_workers(respawn=respawn)
        if self.status != self.Status.STOPPED:
            self._schedule()

    def _schedule(self) -> None:
        """One round of rq's scheduler for the pool's queues: locks, heartbeat, due jobs."""
        if self._scheduler is None:
            self._scheduler = PlatformScheduler(self._queue_names, connection=self.connection,
                                                name=f"pool-{self.name}")
            self._scheduler._survive_redis_outages(self._scheduler.register_birth)
        self._scheduler._survive_redis_outages(self._scheduler._cycle)

    def request_stop(self, signum=None, frame=None):
        self._last_stop_signal = time.monotonic()
        super().request_stop(signum, frame)

    def all_workers_have_stopped(self) -> bool:
        stopped = super().all_workers_have_stopped()
        if not stopped and time.monotonic() - self._last_stop_signal > RESIGNAL_EVERY_SECONDS:
            self._last_stop_signal = time.monotonic()
            for worker_data in list(self.worker_dict.values()):
                self.stop_worker(worker_data, sig=signal.SIGINT)
        return stopped

    def get_worker_process(self, name: str, burst: bool, _sleep: float = 0, logging_level: str = "INFO"):
        return ForkProcess(
            target=run_worker,
            args=(name, self._queue_names),
            kwargs={
                "burst": burst,
                "logging_level": logging_level,
                "worker_class": self.worker_class,
                "job_class": self.job_class,
                "queue_class": self.queue_class,
                "serializer": self.serializer,
                "exception_handlers": self.exception_handlers,
            },
            name=f"Worker {name} (WorkerPool {self.name})",
        )

    def handle_dead_worker(self, worker_data):
        super().handle_dead_worker(worker_data)
        if self.status == self.Status.STOPPED:
            return  # a stopping worker stopped its scheduler, which released its locks
        try:
            # rq keeps a killed worker registered until its key's TTL (minutes): gone now, so a
            # lease it held on another host ends at once (waplatform.lease_owners).
            self.connection.delete(Worker.redis_worker_namespace_prefix + worker_data.name)
            for queue_name in self._queue_names:
                # Owner-checked: a lock some other worker holds is left alone.
                if release_lock(self.connection, RQScheduler.get_locking_key(queue_name), worker_data.name):
                    logger.info("Released the %s scheduler lock of dead worker %s", queue_name, worker_data.name)
        except RedisError as exc:  # Redis restarting: its locks expire on their own
            logger.warning("Could not release scheduler locks of dead worker %s: %s", worker_data.name, exc)


def run_worker(worker_name: str, queue_names: list[str], *, burst: bool, logging_level: str, worker_class,
               job_class, queue_class, serializer, exception_handlers) -> None:
    """rq.worker_pool.run_worker, with the connection from the first queue's settings."""
    connection = get_connection(queue_names[0])
    queues = [queue_class(name, connection=connection) for name in queue_names]
    worker = worker_class(queues, name=worker_name, connection=connection, serializer=serializer,
                          job_class=job_class, queue_class=queue_class, exception_handlers=exception_handlers)
    worker.log.info("Starting worker started with PID %s", os.getpid())
    # The pool schedules (PlatformWorkerPool._schedule): no scheduler child per worker.
    worker.work(burst=burst, with_scheduler=False, logging_level=logging_level)

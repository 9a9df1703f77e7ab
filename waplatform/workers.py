"""The rq worker class the platform runs.

SimpleWorker, not rq's forking Worker: a fork per job caps a worker at
30-50 jobs/s on these machines against ~300 without (DESIGN.md), and our
jobs are short I/O calls. What forking gave us we take back here:
- memory isolation: a worker whose RSS passes WORKER_MAX_MEMORY_MB stops
  after its current job and rq's WorkerPool starts a fresh one (the seed's
  PM2 memory restart);
- a clean database connection per job: Django's connection is checked before
  and after each job, since a long-lived process otherwise keeps a dead one.
Job timeouts still hold: SimpleWorker enforces them with SIGALRM.

rq runs a scheduler (delayed and retried jobs) in a child process of whichever
worker wins the queue's scheduler lock. When that worker is killed -9, nothing
in rq ends the child: it ran on as an orphan and kept the lock. Here the child
dies with its worker (PR_SET_PDEATHSIG, then rq's own stop releases the lock),
and the pool releases a dead worker's locks itself in case the child was
killed along with it (waplatform.worker_pool).
"""

import ctypes
import os
import signal
import time

import psutil
from django.conf import settings
from django.db import close_old_connections, connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker, WorkerStatus

PR_SET_PDEATHSIG = 1
# How long a worker or its scheduler waits between attempts while Redis is away: a
# restarted Redis is back in seconds, and rq's own backoff (up to 60 s) left workers
# asleep long after it was.
REDIS_RETRY_SECONDS = 2


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1024 * 1024)


def _refresh_db_connection() -> None:
    # Inside an atomic block (a test driving the worker in-process) closing
    # would throw away the caller's transaction.
    if not connection.in_atomic_block:
        close_old_connections()


class PlatformScheduler(RQScheduler):
    def start(self):
        self._worker_pid = os.getpid()  # recorded before rq forks the scheduler process
        return super().start()

    def work(self):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != self._worker_pid:
            # The worker died between the fork and the prctl: stop now, as the signal would have.
            self.request_stop()
        self._install_signal_handlers()
        self._survive_redis_outages(self.register_birth)
        while not self._stop_requested:
            self._survive_redis_outages(self._cycle)
            time.sleep(self.interval)
        self._survive_redis_outages(self.stop)

    def _cycle(self):
        if self.should_reacquire_locks:
            self.acquire_locks()
        self.heartbeat()  # re-takes a lock that vanished with an emptied Redis
        self.enqueue_scheduled_jobs()

    def _survive_redis_outages(self, step):
        # rq's loop lets a connection error end the scheduler process, and its worker
        # starts a new one only at its next maintenance (10 min): delayed and retried
        # jobs then waited that long after every Redis restart.
        try:
            step()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            self.log.warning("Scheduler: Redis unavailable (%s); retrying in %d s", exc, REDIS_RETRY_SECONDS)
            time.sleep(REDIS_RETRY_SECONDS)


class PlatformWorker(SimpleWorker):
    exponential_backoff_factor = 1.5
    max_connection_wait_time = REDIS_RETRY_SECONDS
    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=None, log_format=None, **kwargs):
        """rq's, with the scheduler named after the worker, so that the pool can release the
        locks of a worker it found dead (the lock's owner token is the scheduler's name)."""
        extra = {k: v for k, v in (("date_format", date_format), ("log_format", log_format)) if v}
        self.scheduler = PlatformScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            serializer=self.serializer,
            name=self.name,
            **extra,
        )
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            if burst:
                try:
                    self.scheduler.register_birth()
                    self.scheduler.enqueue_scheduled_jobs()
                finally:
                    self.scheduler.release_locks()
                    self.scheduler.register_death()
            else:
                self.scheduler.start()

    def execute_job(self, job, queue):
        _refresh_db_connection()
        try:
            super().execute_job(job, queue)
        finally:
            _refresh_db_connection()
            self._stop_when_over_memory_limit()

    def _stop_when_over_memory_limit(self) -> None:
        limit = settings.WORKER_MAX_MEMORY_MB
        used = rss_mb()
        if limit and used > limit:
            self.log.warning("Worker %s: %.0f MB > %d MB limit, stopping to be replaced", self.name, used, limit)
            self._stop_requested = True

    def _shutdown(self):
        # rq raises StopRequested from the signal handler whenever the worker is not
        # BUSY. Between dequeuing a job and starting it (rq logs the job there) a
        # library's broad `except` swallows it: seen under load, the worker then ran the
        # job and sat in its next BLMOVE until the pool's repeated signal, 4 s of a 5 s
        # stop budget. The flag makes the loop stop before its next dequeue regardless.
        self._stop_requested = True
        super()._shutdown()

    def request_force_stop(self, signum, frame):
        # A repeated stop signal (see waplatform.worker_pool) must not cut a
        # running job short: the job finishes and the loop then stops, since
        # the first signal already set _stop_requested. The launcher's stop
        # budget (SHUTDOWN_PROCESS_SECONDS) is the hard cap.
        if self.get_state() == WorkerStatus.BUSY:
            self._stop_requested = True
            return
        super().request_force_stop(signum, frame)

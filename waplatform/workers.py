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
"""

import psutil
from django.conf import settings
from django.db import close_old_connections, connection
from rq.worker import SimpleWorker, WorkerStatus


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / (1024 * 1024)


def _refresh_db_connection() -> None:
    # Inside an atomic block (a test driving the worker in-process) closing
    # would throw away the caller's transaction.
    if not connection.in_atomic_block:
        close_old_connections()


class PlatformWorker(SimpleWorker):
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

    def request_force_stop(self, signum, frame):
        # A repeated stop signal (see waplatform.worker_pool) must not cut a
        # running job short: the job finishes and the loop then stops, since
        # the first signal already set _stop_requested. The launcher's 60 s
        # grace is the hard cap.
        if self.get_state() == WorkerStatus.BUSY:
            self._stop_requested = True
            return
        super().request_force_stop(signum, frame)

"""rq's WorkerPool with a shutdown that cannot hang.

rq's warm shutdown raises StopRequested from the signal handler when the
worker is idle; now and then that exception lands inside a library's broad
`except` and is lost, and the pool's own SIGINT arrives within rq's 1 s
duplicate window and is ignored, so the worker sits in BLMOVE forever (seen
here: 3 of 15 idle workers on one Ctrl-C). The pool therefore repeats its
stop signal every few seconds; PlatformWorker turns a repeated signal into an
exit only while idle, so a busy worker still finishes its job.
"""

import signal
import time

from rq.worker_pool import WorkerPool

RESIGNAL_EVERY_SECONDS = 3


class PlatformWorkerPool(WorkerPool):
    def start(self, burst: bool = False, logging_level: str = "INFO"):
        self._last_stop_signal = 0.0
        super().start(burst=burst, logging_level=logging_level)

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

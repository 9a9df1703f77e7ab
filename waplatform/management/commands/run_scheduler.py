"""`manage.py run_scheduler waplatform.cron`: rq's CronScheduler, run only while this process
holds the scheduler lease (waplatform/scheduler_lease.py), so two hosts may run it.

The standby waits; once it holds the lease it carries on the holder's schedule
from rq's job history in Redis (each cron job's last enqueue time) rather than
starting every interval afresh, so no interval runs twice at a handover. Every
job it enqueues carries `meta["scheduler"]`, the name of the scheduler that
enqueued it.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from django.conf import settings
from django_rq.cron import DjangoCronScheduler
from redis.exceptions import RedisError
from rq.exceptions import StopRequested

from waplatform.checks import ServiceCommand
from waplatform.gc_freeze import freeze_startup_objects
from waplatform.scheduler_lease import Lease

logger = logging.getLogger("waplatform.scheduler")


class LeasedCronScheduler(DjangoCronScheduler):
    lease: Lease

    def enqueue_jobs(self):
        # Checked per job: a renewal that failed while jobs were due ends enqueueing at once.
        enqueued = []
        for job in self._cron_jobs:
            if not self.lease.held():
                break
            if job.should_run():
                job.enqueue(self.connection)
                job.set_enqueue_time(datetime.now(timezone.utc))
                enqueued.append(job)
        return enqueued

    def resume_schedule(self) -> None:
        """Each cron job's next run from its last enqueue by whichever scheduler held the lease."""
        for job in self._cron_jobs:
            job.job_options["meta"] = {**job.job_options.get("meta", {}), "scheduler": self.name}
            newest = self.connection.zrange(job.job_history_key, -1, -1, withscores=True)
            if newest:
                job.set_enqueue_time(datetime.fromtimestamp(newest[0][1], tz=timezone.utc))

    def run_while_leased(self) -> None:
        self._install_signal_handlers()
        active = False
        try:
            while True:
                try:
                    holding = self.lease.try_acquire()
                except RedisError as error:
                    logger.warning("scheduler %s: lease check failed (%s); not scheduling", self.name, error)
                    holding = False
                if holding and not active:
                    active = True
                    self.resume_schedule()
                    self.register_birth()
                    logger.info("scheduler %s: holds the lease; scheduling", self.name)
                elif not holding and active:
                    active = False
                    logger.warning("scheduler %s: lost the lease; standing by", self.name)
                if not holding:
                    time.sleep(self.lease.renew_every)
                    continue
                renew_at = time.monotonic() + self.lease.renew_every
                while self.lease.held() and time.monotonic() < renew_at:
                    try:
                        if self.enqueue_jobs():
                            self.save()
                        self.heartbeat()
                    except RedisError as error:
                        logger.warning("scheduler %s: %s", self.name, error)
                    time.sleep(max(0.0, min(self.calculate_sleep_interval(), renew_at - time.monotonic())))
        except (KeyboardInterrupt, StopRequested):
            logger.info("scheduler %s: stopping", self.name)
        finally:
            if active:
                try:
                    self.register_death()
                    self.lease.release()
                except RedisError:
                    pass


class Command(ServiceCommand):
    help = "rq's cron scheduler, active only while it holds the Redis scheduler lease"

    def add_arguments(self, parser) -> None:
        parser.add_argument("config_path", help="cron configuration module, e.g. waplatform.cron")
        parser.add_argument("--logging-level", default="INFO", help="rq's scheduler log level (RQ_LOG_LEVEL)")

    def handle(self, *args, config_path: str, **options) -> None:
        scheduler = LeasedCronScheduler(logging_level=getattr(logging, str(options["logging_level"]).upper(), logging.INFO))
        scheduler.load_config_from_file(config_path)
        scheduler.lease = Lease(scheduler.connection, seconds=settings.SCHEDULER_LEASE_SECONDS,
                                identity=scheduler.name)
        self.stdout.write(f"scheduler {scheduler.name}: {len(scheduler.get_jobs())} jobs; waiting for the lease")
        self.stdout.flush()
        freeze_startup_objects()
        scheduler.run_while_leased()

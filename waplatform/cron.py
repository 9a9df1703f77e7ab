"""rq CronScheduler configuration: `manage.py run_scheduler waplatform.cron` (leased; plain `rqcron` also reads it).

Each app adds its periodic jobs here as its issue lands.
"""

from django.conf import settings
from rq import cron

from messaging import jobs as messaging_jobs
from pooling import jobs as pooling_jobs
from waplatform import heartbeat, jobs

cron.register(jobs.heartbeat, queue_name="maintenance", interval=heartbeat.INTERVAL_SECONDS, result_ttl=60)

# The outbox relay (docs/messaging.md "Events"): events the fast path after commit missed.
cron.register(jobs.relay_events, queue_name="maintenance", interval=5, result_ttl=60)
cron.register(jobs.purge_delivered_events, queue_name="maintenance", interval=3600, result_ttl=600)

# Recovery in seconds (docs/operations.md): an emptied Redis, a send worker that died mid-send.
cron.register(jobs.check_redis_epoch, queue_name="maintenance", interval=settings.REDIS_EPOCH_CHECK_SECONDS,
              result_ttl=60)
cron.register(messaging_jobs.reclaim_orphaned_sends, queue_name="maintenance",
              interval=settings.ORPHAN_CHECK_SECONDS, result_ttl=60)

# Pools (DESIGN.md "Pool upkeep").
cron.register(pooling_jobs.run_health_checks, queue_name="maintenance", interval=30, result_ttl=300)
cron.register(pooling_jobs.optimize_pools, queue_name="maintenance", interval=300, result_ttl=600)
cron.register(pooling_jobs.take_pool_snapshots, queue_name="maintenance", interval=300, result_ttl=600)
cron.register(pooling_jobs.cleanup_idle_sessions, queue_name="maintenance", interval=600, result_ttl=600)

# Messages (issue 5): lost send jobs, due webhook deliveries, stale pending statuses.
cron.register(messaging_jobs.sweep, queue_name="maintenance", interval=60, result_ttl=300)
# Media (issue 17, docs/media.md): lost download jobs; files past their tier's retention.
cron.register(messaging_jobs.sweep_media, queue_name="maintenance", interval=60, result_ttl=300)
cron.register(messaging_jobs.cleanup_media, queue_name="maintenance", interval=3600, result_ttl=600)

# The inbox (docs/inbox.md): snoozed conversations whose time has come open again.
cron.register(messaging_jobs.wake_snoozed, queue_name="maintenance", interval=60, result_ttl=300)

# Operations: threshold alerts (DESIGN.md, docs/operations.md).
from operations import jobs as operations_jobs  # noqa: E402

cron.register(operations_jobs.evaluate_alerts, queue_name="maintenance", interval=30, result_ttl=120)

# Firestore mirror (issue 8): mirror jobs whose enqueue failed when their event happened.
from mirror import jobs as mirror_jobs  # noqa: E402

cron.register(mirror_jobs.sweep_backlog, queue_name="maintenance", interval=60, result_ttl=300)

# Agents (issue 14): inbound messages whose reply job was lost (emptied Redis, killed worker).
from agents import jobs as agents_jobs  # noqa: E402

cron.register(agents_jobs.sweep, queue_name="maintenance", interval=15, result_ttl=60)

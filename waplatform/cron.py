"""rq CronScheduler configuration: `manage.py rqcron waplatform.cron`.

Each app adds its periodic jobs here as its issue lands.
"""

from rq import cron

from waplatform import jobs

cron.register(jobs.heartbeat, queue_name="maintenance", interval=30, result_ttl=60)

import django_rq
import pytest
from django.db import transaction
from django.test import override_settings
from rest_framework.test import APIRequestFactory

from waplatform import heartbeat
from waplatform.api_errors import exception_handler
from waplatform.queues import QueueFull, enqueue, enqueue_on_commit, get_queue
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration


def test_the_queue_cap_refuses_the_1001st_job():
    queue = get_queue("low")
    for _ in range(1000):
        enqueue("waplatform.jobs.heartbeat", queue="low")

    with pytest.raises(QueueFull) as refused:
        enqueue("waplatform.jobs.heartbeat", queue="low")

    assert queue.count == 1000
    assert "low" in str(refused.value) and "1000" in str(refused.value)


def test_a_full_queue_becomes_503_with_retry_after():
    request = APIRequestFactory().post("/api/v1/messages")

    response = exception_handler(QueueFull("high", 1000, 1000), {"request": request})

    assert response.status_code == 503
    assert response.data["code"] == "queue_full"
    assert int(response["Retry-After"]) > 0


@override_settings(QUEUE_MAX_WAITING=5)
def test_the_cap_is_a_setting():
    for _ in range(5):
        enqueue("waplatform.jobs.heartbeat", queue="ai")
    with pytest.raises(QueueFull):
        enqueue("waplatform.jobs.heartbeat", queue="ai")


@pytest.mark.django_db(transaction=True)
def test_a_job_enqueued_on_commit_only_runs_after_commit():
    queue = get_queue("maintenance")

    with transaction.atomic():
        enqueue_on_commit("waplatform.jobs.heartbeat", queue="maintenance")
        waiting_inside = queue.count
        django_rq.get_worker("maintenance").work(burst=True)
        assert get_redis().get(heartbeat.KEY) is None
    waiting_after = queue.count
    django_rq.get_worker("maintenance").work(burst=True)

    assert (waiting_inside, waiting_after) == (0, 1)
    assert get_redis().get(heartbeat.KEY) is not None


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_enqueues_nothing():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            enqueue_on_commit("waplatform.jobs.heartbeat", queue="maintenance")
            raise RuntimeError("rollback")

    assert get_queue("maintenance").count == 0


def test_a_worker_over_its_memory_limit_stops_after_its_current_job(db):
    for _ in range(3):
        enqueue("waplatform.jobs.heartbeat", queue="maintenance")
    worker = django_rq.get_worker("maintenance")

    with override_settings(WORKER_MAX_MEMORY_MB=1):
        worker.work(burst=True)

    assert type(worker).__name__ == "PlatformWorker"
    assert get_queue("maintenance").count == 2
    assert get_redis().get(heartbeat.KEY) is not None


def test_the_cron_scheduler_config_registers_the_heartbeat():
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=get_redis())
    scheduler.load_config_from_file("waplatform.cron")

    registered = {(job.func_name, job.queue_name, job.interval) for job in scheduler.get_jobs()}
    assert ("waplatform.jobs.heartbeat", "maintenance", 30) in registered

from pathlib import Path

import pytest
from django.test import Client, override_settings
from django_rq import get_worker

from tests.waiting import wait_until
from waplatform import heartbeat
from waplatform.embedded_redis import EmbeddedRedis, free_port
from waplatform.queues import enqueue
from waplatform.redis import get_redis


def test_healthz_answers_while_the_process_lives(db):
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_is_ready_with_database_and_redis_up(db):
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


@pytest.mark.integration
def test_readyz_reports_503_when_redis_is_down(db, tmp_path: Path):
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path, appendonly=False).start()
    with override_settings(REDIS_QUEUES_URL=server.url):
        assert Client().get("/readyz").status_code == 200
        server.stop()

        response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert "ConnectionError" in body["checks"]["redis"]


def test_api_docs_and_schema_are_served_without_a_cdn(db):
    client = Client()
    docs = client.get("/api/docs/")
    schema = client.get("/api/schema/")

    html = docs.content.decode()
    assert docs.status_code == 200 and "swagger" in html.lower()
    assert not any(cdn in html for cdn in ("cdn.", "unpkg.com", "jsdelivr"))
    assert "/static/drf_spectacular_sidecar/" in html
    assert schema.status_code == 200 and b"/api/v1/tenant" in schema.content


def test_the_rq_dashboard_is_for_staff_only(db, client, operator):
    assert client.get("/admin/rq/").status_code == 302

    client.force_login(operator)
    assert client.get("/admin/rq/").status_code == 200


def test_readyz_does_not_ask_for_a_scheduler_that_never_ran(db):
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert "scheduler" not in response.json()["checks"]


@pytest.mark.integration
def test_readyz_is_ready_while_the_scheduler_heartbeat_is_fresh(db):
    enqueue("waplatform.jobs.heartbeat", queue="maintenance")
    get_worker("maintenance").work(burst=True)

    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "scheduler": "ok"}


@pytest.mark.integration
def test_readyz_reports_503_naming_the_scheduler_when_its_heartbeat_is_stale(db):
    enqueue("waplatform.jobs.heartbeat", queue="maintenance")
    get_worker("maintenance").work(burst=True)

    with override_settings(SCHEDULER_HEARTBEAT_STALE_SECONDS=0.05):
        wait_until(lambda: heartbeat.age(get_redis()) > 0.05)
        response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok" and body["checks"]["redis"] == "ok"
    assert body["checks"]["scheduler"].startswith("no heartbeat for")

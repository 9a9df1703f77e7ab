"""Webhooks out: retries with the same event id, no retry on 4xx, order per conversation, DB-kept retries."""

import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from messaging import webhooks_out
from messaging.models import WebhookDelivery, WebhookEndpoint
from messaging.services import sweep
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.messaging.conftest import work, work_until
from tests.waiting import wait_until
from waplatform.events import publish_event
from waplatform.redis import get_cache_redis, get_redis

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def publish(tenant, type_="message.received", conversation_id=7, n=0):
    return publish_event(tenant_id=tenant.pk, type=type_, data={"conversation_id": conversation_id, "n": n})


def test_a_receiver_failing_three_times_gets_the_event_once_with_the_same_id(webhook_receiver):
    tenant = TenantFactory()
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url, event_types=["message.received"])
    webhook_receiver.fail_next = 3

    event = publish(tenant)
    delivery = work_until(lambda: WebhookDelivery.objects.filter(endpoint=endpoint, status="succeeded").first(),
                          "webhooks")

    received = webhook_receiver.wait_for(1)
    assert len(received) == 1 and webhook_receiver.fail_next == 0
    assert received[0].headers["x-wa-event-id"] == event["id"] == json.loads(received[0].body)["id"]
    assert delivery.attempts == 4 and delivery.last_status_code == 200


def test_a_receiver_answering_410_is_not_retried(status_receiver):
    receiver = status_receiver(410)
    tenant = TenantFactory()
    webhooks_out.create_endpoint(tenant=tenant, url=receiver.url)

    publish(tenant)
    work("webhooks")
    sweep()
    work("webhooks")

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("dead", 1, 410)
    assert [r.status for r in receiver.requests] == [410]


def test_429_and_5xx_are_retried_until_the_window_closes_then_dead_lettered_and_replayable(status_receiver, settings):
    receiver = status_receiver(429)
    tenant = TenantFactory()
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url=receiver.url)
    settings.WEBHOOK_RETRY_WINDOW_SECONDS = 1

    publish(tenant)
    work_until(lambda: WebhookDelivery.objects.filter(status="dead").exists(), "webhooks")
    attempts = len(receiver.requests)
    receiver.status = 200
    call_command("replay_webhooks", "--endpoint", str(endpoint.pk), "--since", "1h")
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), "webhooks")

    assert attempts >= 2
    assert len({r.headers["x-wa-event-id"] for r in receiver.requests}) == 1
    assert [r.status for r in receiver.requests][-1] == 200


def test_deliveries_keep_event_order_per_conversation(webhook_receiver):
    tenant = TenantFactory()
    webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url)
    webhook_receiver.fail_next = 2  # the first event fails twice; the later ones must wait for it

    for n in range(4):
        publish(tenant, n=n)
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 4, "webhooks")

    assert [d.json()["data"]["n"] for d in webhook_receiver.wait_for(4)] == [0, 1, 2, 3]


def test_retries_live_in_the_database_so_an_emptied_redis_loses_none(webhook_receiver, settings):
    tenant = TenantFactory()
    webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url)
    webhook_receiver.fail_next = 1
    settings.SWEEP_STUCK_AFTER_SECONDS = 0

    publish(tenant, conversation_id=1)
    publish(tenant, conversation_id=2)
    work("webhooks")  # the first fails; its retry is scheduled in Redis
    get_redis().flushall()  # a restart with an empty Redis
    # the sweeper finds the retry in the database once it is due (nothing in Redis knows of it)
    requeued = wait_until(lambda: sweep().deliveries_requeued, message="the sweeper to requeue the due retry")
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 2, "webhooks")

    assert sorted(d.json()["data"]["conversation_id"] for d in webhook_receiver.wait_for(2)) == [1, 2]
    assert requeued == 1


def test_only_subscribed_and_active_endpoints_get_deliveries(webhook_receiver):
    tenant = TenantFactory()
    wanted = webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url, event_types=["message.status"])
    webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url, event_types=["message.failed"])
    webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url, active=False)
    webhooks_out.create_endpoint(tenant=TenantFactory(), url=webhook_receiver.url)

    publish(tenant, "message.status")

    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [wanted.pk]


def test_endpoint_changes_reach_the_next_event_though_each_process_keeps_the_endpoints(webhook_receiver):
    tenant = TenantFactory()

    def delivered() -> list[int]:
        return [d.payload["data"]["n"] for d in WebhookDelivery.objects.filter(endpoint__tenant=tenant).order_by("pk")]

    publish(tenant, n=0)  # no endpoint yet: this process now keeps "none" for the tenant
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url)
    publish(tenant, n=1)
    webhooks_out.update_endpoint(endpoint=endpoint, active=False)
    publish(tenant, n=2)
    assert delivered() == [1]

    # Changed behind this process's back (a QuerySet.update sends no signal): the kept answer stands...
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(active=True)
    publish(tenant, n=3)
    assert delivered() == [1]
    # ...until the stamp moves, as another process's change moves it after its commit
    get_cache_redis().set("wap:webhook-endpoints:version", "another process changed an endpoint")
    publish(tenant, n=4)
    webhooks_out.delete_endpoint(endpoint=WebhookEndpoint.objects.get(pk=endpoint.pk))
    publish(tenant, n=5)

    assert delivered() == [] and WebhookDelivery.objects.count() == 0  # the endpoint's deliveries went with it
    second = webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url, event_types=["message.status"])
    publish(tenant, "message.status", n=6)
    publish(tenant, "message.received", n=7)
    assert delivered() == [6] and WebhookDelivery.objects.get().endpoint_id == second.pk


def test_once_a_failed_delivery_goes_through_the_endpoints_other_waiting_retries_go_at_once(webhook_receiver, settings):
    """After an outage, a receiver that answers again gets the rest now, not at the end of each backoff."""
    tenant = TenantFactory()
    webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url)
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600  # a retry would come back in 30-60 minutes
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 3600
    settings.SWEEP_STUCK_AFTER_SECONDS = 0
    webhook_receiver.fail_next = 3  # down for the first attempt of each conversation's event

    first = publish(tenant, conversation_id=1)
    publish(tenant, conversation_id=2)
    publish(tenant, conversation_id=3)
    work("webhooks")
    assert WebhookDelivery.objects.filter(status="failed").count() == 3
    # The first retry comes due (as its backoff ends); the receiver is back.
    WebhookDelivery.objects.filter(event_id=first["id"]).update(next_attempt_at=timezone.now())
    sweep()
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 3, "webhooks")

    assert sorted(d.json()["data"]["conversation_id"] for d in webhook_receiver.wait_for(3)) == [1, 2, 3]
    assert list(WebhookDelivery.objects.values_list("attempts", flat=True)) == [2, 2, 2]


def test_a_retry_the_receiver_answered_429_keeps_its_backoff_when_the_others_go(webhook_receiver, settings):
    tenant = TenantFactory()
    webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url)
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 3600
    settings.SWEEP_STUCK_AFTER_SECONDS = 0
    webhook_receiver.fail_next = 3
    first = publish(tenant, conversation_id=1)
    publish(tenant, conversation_id=2)
    slowed = publish(tenant, conversation_id=3)
    work("webhooks")
    WebhookDelivery.objects.filter(event_id=slowed["id"]).update(last_status_code=429)  # "too many requests"

    WebhookDelivery.objects.filter(event_id=first["id"]).update(next_attempt_at=timezone.now())
    sweep()
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 2, "webhooks")

    assert sorted(d.json()["data"]["conversation_id"] for d in webhook_receiver.wait_for(2)) == [1, 2]
    assert WebhookDelivery.objects.get(event_id=slowed["id"]).status == "failed"  # still an hour away


def test_a_tenant_whose_receiver_is_back_has_the_waiting_retries_sent_now(webhook_receiver, settings):
    tenant = TenantFactory()
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url)
    settings.WEBHOOK_RETRY_BASE_SECONDS = 3600
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 3600
    webhook_receiver.fail_next = 2
    publish(tenant, conversation_id=1)
    publish(tenant, conversation_id=2)
    work("webhooks")
    assert WebhookDelivery.objects.filter(status="failed").count() == 2  # both an hour away

    answer = client_for(tenant).post(f"/api/v1/webhooks/{endpoint.pk}/retry")
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").count() == 2, "webhooks")

    assert (answer.status_code, answer.json()) == (202, {"retried": 2})
    assert sorted(d.json()["data"]["conversation_id"] for d in webhook_receiver.wait_for(2)) == [1, 2]


def test_retrying_a_disabled_endpoint_is_refused_with_what_to_do(webhook_receiver):
    tenant = TenantFactory()
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url=webhook_receiver.url, active=False)

    answer = client_for(tenant).post(f"/api/v1/webhooks/{endpoint.pk}/retry")

    assert answer.status_code == 409
    assert answer.json()["code"] == "endpoint_disabled" and "enable it first" in answer.json()["detail"]

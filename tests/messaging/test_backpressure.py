from messaging.models import Message
from waplatform.queues import enqueue


def test_a_send_to_a_full_queue_is_503_with_retry_after_and_writes_nothing(api, settings):
    settings.QUEUE_MAX_WAITING = 2
    for _ in range(2):
        enqueue("waplatform.jobs.heartbeat", queue="low")  # the standard tier's send queue

    response = api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": "hi"}}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "queue_full" and "low" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    assert not Message.objects.exists()

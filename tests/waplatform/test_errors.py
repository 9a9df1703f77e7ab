"""Every error under /api/ and /hooks/ is JSON `{code, detail}`; a 500 carries an error id that is in the log."""

import logging

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from pooling.bridges.signatures import waha_signature
from tests.conftest import client_for
from tests.factories import SlotFactory
from waplatform.embedded_redis import free_port


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code and body["detail"]
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/nothing", "/hooks/nothing/", "/api/v1/messages/"])
def test_unknown_paths_are_json_404(api_client, path):
    assert_json_error(api_client.get(path), 404, "not_found")


@pytest.mark.django_db
def test_a_missing_trailing_slash_is_a_json_404_that_names_the_right_path_not_a_redirect():
    # APPEND_SLASH would redirect, and a POST that follows a redirect loses its body.
    body = assert_json_error(Client().post("/hooks/cloud", data=b"{}", content_type="application/json"),
                             404, "not_found")

    assert "/hooks/cloud/" in body["detail"]


@pytest.mark.django_db
def test_a_wrong_method_is_json_405_with_allow(api_client):
    api = assert_json_error(api_client.delete("/api/v1/tenant"), 405, "method_not_allowed")
    hook = Client().put("/hooks/cloud/", data=b"{}", content_type="application/json")

    assert_json_error(hook, 405, "method_not_allowed")
    assert hook["Allow"] == "GET, POST"
    assert "DELETE" in api["detail"]


@pytest.mark.django_db
def test_a_failed_cloud_subscription_handshake_is_json():
    response = Client().get("/hooks/cloud/", {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"})

    assert_json_error(response, 403, "verification_failed")


def _break_table(table: str) -> None:
    """A table gone from under the running code, as after a migration that was not applied:
    a real failure of the real stack. The test's transaction puts it back."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_gone")


@pytest.mark.django_db
def test_an_unexpected_api_failure_is_json_500_with_an_error_id_in_the_log(tenant, caplog):
    api = client_for(tenant)
    api.raise_request_exception = False
    api.get("/api/v1/webhooks")  # authenticated once, so the failure is the view's own
    _break_table("messaging_webhookendpoint")

    with caplog.at_level(logging.ERROR, logger="waplatform.api_errors"):
        response = api.get("/api/v1/webhooks")

    body = assert_json_error(response, 500, "server_error")
    assert body["error_id"] in body["detail"]
    [record] = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert record.exc_info and "messaging_webhookendpoint" in str(record.exc_info[1])


@pytest.mark.django_db
def test_an_unexpected_hook_failure_is_json_500_with_an_error_id_in_the_log(caplog):
    slot = SlotFactory()
    body = b'{"event": "session.status", "session": "s1", "payload": {"status": "WORKING"}}'
    _break_table("pooling_slot")

    with caplog.at_level(logging.ERROR, logger="waplatform.api_errors"):
        response = Client(raise_request_exception=False).post(
            f"/hooks/waha/{slot.pk}/", data=body, content_type="application/json",
            HTTP_X_WEBHOOK_HMAC=waha_signature(slot.webhook_secret, body))

    answer = assert_json_error(response, 500, "server_error")
    assert any(answer["error_id"] in r.getMessage() and r.exc_info for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_a_lost_database_connection_is_503_with_retry_after_on_the_api_and_the_hooks():
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("Django never closes an in-memory SQLite database; the PostgreSQL run covers this")
    slot = SlotFactory()
    api = APIClient(raise_request_exception=False)
    hooks = Client(raise_request_exception=False)
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":  # the file cannot be opened
        connection.settings_dict["NAME"] = "/nonexistent-directory/db.sqlite3"
    else:  # the server is gone: reconnecting meets a port nothing listens on
        connection.settings_dict["PORT"] = str(free_port())
    try:
        answers = [api.get("/api/v1/tenant", HTTP_AUTHORIZATION="Bearer wap_x"),
                   hooks.post(f"/hooks/waha/{slot.pk}/", data=b"{}", content_type="application/json")]
    finally:
        connection.close()
        connection.settings_dict.update(saved)

    for answer in answers:
        assert_json_error(answer, 503, "database_unavailable")
        assert int(answer["Retry-After"]) > 0


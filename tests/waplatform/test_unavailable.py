"""A backing service that is briefly gone is a 503 with Retry-After, never an HTML 500."""

import pytest
from django.db import OperationalError
from rest_framework.test import APIRequestFactory

from waplatform.api_errors import exception_handler
from waplatform.embedded_redis import free_port

pytestmark = pytest.mark.integration


def test_the_api_answers_503_json_with_retry_after_while_redis_is_down(api_client, settings):
    # A real client against a port nothing listens on: what the throttle (on the cache Redis)
    # meets while Redis restarts.
    settings.REDIS_CACHE_URL = f"redis://127.0.0.1:{free_port()}/0"

    response = api_client.get("/api/v1/tenant")

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "redis_unavailable" and "Redis" in body["detail"]
    assert int(response["Retry-After"]) > 0


def test_a_locked_sqlite_database_is_503_with_retry_after():
    request = APIRequestFactory().post("/api/v1/messages")

    response = exception_handler(OperationalError("database is locked"), {"request": request})

    assert response.status_code == 503
    assert response.data["code"] == "database_busy"
    assert int(response["Retry-After"]) > 0


def test_other_database_errors_stay_errors():
    request = APIRequestFactory().post("/api/v1/messages")

    assert exception_handler(OperationalError("no such table: x"), {"request": request}) is None

"""SQLite allows one writer: a write that waits past the busy timeout for another one's lock is
told to retry (503 JSON with Retry-After), not given an HTML 500 (docs/operations.md, "SQLite")."""

import sqlite3

import pytest
from django.db import connection

pytestmark = pytest.mark.integration


@pytest.fixture
def another_writer(transactional_db):
    """A second process's view of the database: a connection holding SQLite's write lock."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        pytest.skip("the write lock under test is SQLite's, on a database file")
    holder = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def test_a_write_that_waits_too_long_for_the_lock_is_503_with_retry_after(api_client, another_writer):
    # given a writer that keeps the lock past this connection's busy timeout (20 s in production)
    connection.ensure_connection()
    connection.cursor().execute("PRAGMA busy_timeout=200")

    # when the API is asked to write
    response = api_client.post("/api/v1/labels", {"name": "urgent"}, format="json")

    # then the client is told to come back
    assert response.status_code == 503, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "database_busy"
    assert int(response["Retry-After"]) > 0

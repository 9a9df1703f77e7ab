"""Moving Alert from pooling to operations renames its table: alerts open before the upgrade stay open after it."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("pooling", "0003_alter_alert_kind"), ("operations", None)]
AFTER = [("pooling", "0004_move_alert_to_operations"), ("operations", "0001_initial")]


@pytest.mark.django_db(transaction=True)
def test_alerts_written_before_the_move_are_read_after_it():
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(BEFORE)
        old_apps = executor.loader.project_state([BEFORE[0]]).apps
        old_apps.get_model("pooling", "Alert").objects.create(kind="slot_down", key="7", message="Slot 7 is down")

        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)
        new_apps = executor.loader.project_state(AFTER).apps
        moved = new_apps.get_model("operations", "Alert").objects.get(kind="slot_down", key="7")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert moved.message == "Slot 7 is down" and moved.resolved_at is None

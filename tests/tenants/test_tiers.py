from decimal import Decimal

from importlib import import_module

from django.apps import apps

from tenants.models import Tier


def test_tiers_are_seeded_with_the_seed_numbers(db):
    # Through the data migration itself: transactional tests elsewhere may have
    # flushed the rows it made when the test database was built.
    import_module("tenants.migrations.0002_seed_tiers").seed(apps, None)
    rows = {t.name: t for t in Tier.objects.all()}

    assert set(rows) == {"standard", "professional", "enterprise"}
    assert (rows["standard"].tenants_per_slot, rows["standard"].max_slots) == (10, 20)
    assert (rows["professional"].tenants_per_slot, rows["professional"].max_slots) == (3, 50)
    assert (rows["enterprise"].tenants_per_slot, rows["enterprise"].max_slots) == (1, None)
    assert [rows[n].send_queue for n in ("enterprise", "professional", "standard")] == ["high", "medium", "low"]
    assert rows["standard"].idle_slot_timeout_minutes == 30
    assert rows["professional"].idle_slot_timeout_minutes == 15
    assert rows["enterprise"].idle_slot_timeout_minutes is None
    assert all(t.monthly_price > Decimal("0") and t.slot_cost_per_hour > 0 for t in rows.values())

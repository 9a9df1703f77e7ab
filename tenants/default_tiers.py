"""The seed's tier table (DESIGN.md). Prices are demo defaults; operators edit them in admin."""

from decimal import Decimal

DEFAULT_TIERS = [
    dict(name="standard", display_name="Standard (shared)", tenants_per_slot=10, max_slots=20,
         send_queue="low", idle_slot_timeout_minutes=30, monthly_price=Decimal("29.00"),
         slot_cost_per_hour=Decimal("0.0400"), api_rate_limit_per_minute=120, messages_per_second=0.5),
    dict(name="professional", display_name="Professional (semi-dedicated)", tenants_per_slot=3, max_slots=50,
         send_queue="medium", idle_slot_timeout_minutes=15, monthly_price=Decimal("99.00"),
         slot_cost_per_hour=Decimal("0.0400"), api_rate_limit_per_minute=600, messages_per_second=1.0),
    dict(name="enterprise", display_name="Enterprise (dedicated)", tenants_per_slot=1, max_slots=None,
         send_queue="high", idle_slot_timeout_minutes=None, monthly_price=Decimal("499.00"),
         slot_cost_per_hour=Decimal("0.0600"), api_rate_limit_per_minute=3000, messages_per_second=2.0),
]


def ensure_default_tiers(tier_model) -> None:
    """Create missing default tiers; never overwrite an operator's edits."""
    for row in DEFAULT_TIERS:
        tier_model.objects.get_or_create(name=row["name"], defaults=row)

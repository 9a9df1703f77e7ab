"""What an operator sees first: alert counts, a readable Health page, a chart that says what it shows,
costs against the time a tenant existed, and an admin that reads well."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from operations import charts, selectors
from operations.models import Alert
from pooling.costs import month_start
from pooling.models import Slot
from tests.factories import AssignmentFactory, MessageFactory, SlotFactory, TenantFactory, WebhookDeliveryFactory
from waplatform.alerts import raise_alert, resolve_alert

pytestmark = pytest.mark.django_db


def test_the_open_alert_count_is_on_the_admin_index_and_every_operations_page(staff_client):
    raise_alert(kind=Alert.Kind.SLOT_DOWN, key="1", message="Slot standard-1 is down")
    raise_alert(kind=Alert.Kind.SLOT_DOWN, key="2", message="Slot standard-2 is down")
    raise_alert(kind=Alert.Kind.SLOT_DOWN, key="3", message="Slot standard-3 is down")
    resolve_alert(kind=Alert.Kind.SLOT_DOWN, key="3")

    pages = ["/admin/", "/admin/operations/pools/", "/admin/operations/costs/", "/admin/operations/queues/",
             "/admin/operations/health/"]
    htmls = [staff_client.get(url).content.decode() for url in pages]

    assert all('data-count="2"' in html and "2 open alerts" in html for html in htmls)


def test_the_health_page_puts_alerts_first_and_groups_processes_with_totals(staff_client):
    raise_alert(kind=Alert.Kind.SLOT_DOWN, key="7", message="Slot standard-7 is down")
    processes = [selectors.PlatformProcess(pid=p, role=r, rss=m, host="h1")
                 for p, r, m in [(10, "workers", 100), (11, "workers", 50), (12, "web", 70)]]

    groups = selectors.process_groups(processes)
    html = staff_client.get("/admin/operations/health/").content.decode()

    assert [(g.host, g.role, g.count, g.rss) for g in groups] == [("h1", "web", 1, 70), ("h1", "workers", 2, 150)]
    assert html.index('id="open-alerts"') < html.index("<th>database</th>") < html.index('id="process-groups"')
    assert "<tfoot><tr><th colspan=\"2\">total</th>" in html


def test_the_chart_spans_the_time_it_has_data_for_with_values_on_hover_and_a_note():
    now = timezone.now()
    series = [charts.Series("standard", [(now - timedelta(minutes=40), 20.0), (now - timedelta(minutes=5), 55.0)])]

    svg = charts.utilisation_svg(series, hours=24, now=now)

    assert "-40 min" in svg and "-24 h" not in svg
    assert "<title>standard: 20% at" in svg and "<title>standard: 55% at" in svg
    assert "still collecting: 40 min of 24 h so far" in svg
    first_x = float(svg.split('class="point" cx="')[1].split('"')[0])
    assert first_x == charts.PAD  # the first snapshot is at the left edge, not lost in an empty day


def test_a_full_day_of_data_has_no_collecting_note():
    now = timezone.now()
    series = [charts.Series("standard", [(now - timedelta(hours=30), 10.0), (now, 20.0)])]

    assert "still collecting" not in charts.utilisation_svg(series, hours=24, now=now)


def test_price_is_pro_rated_from_the_tenants_creation_and_empty_slot_time_is_the_operators_cost():
    # given a month 10 days old, a tenant created 2 days ago that used a slot for one day
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)
    start = month_start(now)
    tenant = TenantFactory()
    type(tenant).objects.filter(pk=tenant.pk).update(created_at=now - timedelta(days=2))
    slot = SlotFactory(tier=tenant.tier)
    Slot.objects.filter(pk=slot.pk).update(created_at=now - timedelta(days=2))
    AssignmentFactory(tenant=tenant, slot=slot, started_at=now - timedelta(days=1), ended_at=now)

    row = next(r for r in selectors.tenant_costs(now=now) if r.tenant.pk == tenant.pk)
    overhead = selectors.operator_overhead(now=now)

    month_seconds = ((start + timedelta(days=32)).replace(day=1) - start).total_seconds()
    expected_price = (tenant.tier.monthly_price * Decimal(2 * 86400) / Decimal(month_seconds)).quantize(Decimal("0.01"))
    assert row.price_to_date == expected_price
    assert row.slots == (24 * tenant.tier.slot_cost_per_hour).quantize(Decimal("0.01"))
    # the slot stood empty the other day: that day is the operator's, not the tenant's
    assert overhead[tenant.tier.name] == (24 * tenant.tier.slot_cost_per_hour).quantize(Decimal("0.01"))
    assert all(str(v).count(".") == 1 and len(str(v).split(".")[1]) == 2
               for v in (row.slots, row.messages, row.ai, row.total, row.price_to_date, row.margin))


def test_the_usage_api_prices_the_time_the_tenant_existed(api_client, tenant):
    body = api_client.get("/api/v1/usage").json()

    assert Decimal(body["price_to_date"]) < Decimal("0.01")  # created a moment ago
    assert body["since"] and all(len(body[k].split(".")[1]) == 2 for k in ("slots", "total", "price_to_date"))


def test_the_admin_reads_well(staff_client):
    MessageFactory(text="Where is my order #1042?")
    WebhookDeliveryFactory()

    index = staff_client.get("/admin/").content.decode()
    messages = staff_client.get("/admin/messaging/message/").content.decode()
    open_deliveries = staff_client.get("/admin/messaging/webhookdelivery/?status__exact=pending").content.decode()
    all_deliveries = staff_client.get("/admin/messaging/webhookdelivery/").content.decode()
    retired_slots = staff_client.get("/admin/pooling/slot/?state__exact=retired").content.decode()

    assert all(name in index for name in ("Agent replies", "WhatsApp sessions", "API keys", "Webhook deliveries"))
    assert "Where is my order #1042?" in messages
    assert 'value="replay"' in all_deliveries and 'value="replay"' not in open_deliveries
    assert 'value="drain"' not in retired_slots


def test_view_site_lands_on_a_page_linking_inbox_api_docs_and_admin(client):
    html = client.get("/").content.decode()

    assert all(f'href="{url}"' in html for url in ("/inbox/", "/api/docs/", "/admin/"))

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from pooling import services
from operations.models import Alert
from tests.factories import AssignmentFactory, SlotFactory, TenantFactory
from waplatform.queues import enqueue

pytestmark = pytest.mark.django_db


def test_operations_pages_are_for_staff_only(client):
    for path in ("/admin/operations/pools/", "/admin/operations/costs/", "/admin/operations/queues/",
                 "/admin/operations/health/"):
        assert client.get(path).status_code == 302  # to the admin login


def test_the_pools_page_shows_each_pool_its_slots_and_a_24h_chart(staff_client):
    tenant = TenantFactory()
    slot = SlotFactory(tenants=1, tenants__tenant=tenant)
    now = timezone.now()
    services.take_snapshots(now=now - timedelta(hours=2))
    services.take_snapshots(now=now)

    html = staff_client.get("/admin/operations/pools/").content.decode()

    assert "Standard (shared)" in html and "10.0 %" in html
    assert tenant.slug in html and str(slot) in html
    assert '<polyline class="series" data-tier="standard"' in html
    assert "cdn" not in html.lower()


def test_costs_are_sortable_and_exported_as_csv(staff_client):
    start = timezone.now() - timedelta(hours=48)
    cheap, dear = TenantFactory(name="Cheap"), TenantFactory(name="Dear")
    AssignmentFactory(tenant=cheap, slot=SlotFactory(), started_at=start + timedelta(hours=47))
    AssignmentFactory(tenant=dear, slot=SlotFactory(), started_at=start)

    page = staff_client.get("/admin/operations/costs/?sort=-total").content.decode()
    exported = staff_client.get("/admin/operations/costs/?format=csv&sort=total")

    assert page.index("Dear") < page.index("Cheap")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert exported["Content-Type"] == "text/csv"
    assert [r["tenant"] for r in rows][:2] == [cheap.slug, dear.slug]
    assert float(rows[1]["slots"]) > float(rows[0]["slots"]) > 0
    assert set(rows[0]) >= {"messages", "ai", "margin", "price_to_date"}


def test_the_queues_page_counts_waiting_jobs(staff_client):
    for _ in range(3):
        enqueue("waplatform.jobs.heartbeat", queue="webhooks")

    html = staff_client.get("/admin/operations/queues/").content.decode()

    assert "<td>webhooks</td><td class=\"num\">3</td>" in html


def test_the_health_page_shows_alerts_and_components(staff_client):
    from waplatform.alerts import raise_alert

    raise_alert(kind=Alert.Kind.SLOT_DOWN, key="7", message="Slot standard-7 is down: refused")

    html = staff_client.get("/admin/operations/health/").content.decode()

    assert "Slot standard-7 is down" in html
    assert "<th>database</th><td>ok</td>" in html and "<th>Redis</th><td>ok</td>" in html


def test_the_admin_index_links_the_operations_pages(staff_client):
    html = staff_client.get("/admin/").content.decode()

    assert 'id="operations-module"' in html and "/admin/operations/pools/" in html


def test_the_queues_page_shows_each_live_bridge_hosts_own_queue(staff_client):
    from pooling import hosts

    hosts.beat("bridge-7")
    for _ in range(2):
        enqueue("waplatform.jobs.heartbeat", queue="bridges@bridge-7")

    html = staff_client.get("/admin/operations/queues/").content.decode()

    assert "<td>bridges@bridge-7</td><td class=\"num\">2</td>" in html


def test_the_queues_page_shows_the_queue_of_a_host_that_holds_slots_but_stopped_beating(staff_client):
    SlotFactory(host="bridge-9")
    enqueue("waplatform.jobs.heartbeat", queue="bridges@bridge-9")

    html = staff_client.get("/admin/operations/queues/").content.decode()

    assert "<td>bridges@bridge-9</td><td class=\"num\">1</td>" in html

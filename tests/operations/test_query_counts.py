"""The admin changelists and operations pages cost a fixed number of queries, at 10 rows as at 1,000.

Rows are written with bulk_create from factory-built objects: the point is the
page, and 1,000 factory saves would make the test slower than the page.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from operations.models import Alert
from pooling.models import Assignment, PoolSnapshot, SessionEvent, Slot, WhatsAppSession
from tenants.models import Membership, Tenant
from tests.factories import MembershipFactory, SlotFactory, TenantFactory, UserFactory, tier
from waplatform.alerts import AlertKind

pytestmark = pytest.mark.django_db

MAX_QUERIES = 10

PAGES = [
    "/admin/tenants/tenant/",
    "/admin/pooling/slot/",
    "/admin/pooling/assignment/",
    "/admin/pooling/whatsappsession/",
    "/admin/pooling/sessionevent/",
    "/admin/pooling/poolsnapshot/",
    "/admin/operations/alert/",
    "/admin/operations/pools/",
    "/admin/operations/costs/",
    "/admin/operations/costs/?format=csv",
    "/admin/operations/queues/",
    "/admin/operations/health/",
]


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def build_platform(rows: int) -> Slot:
    """`rows` tenants, each with members, a slot, an assignment history, a session with events,
    plus `rows` snapshots and alerts. Returns one slot that hosted every tenant."""
    standard = tier("standard")
    now = timezone.now()
    tenants = Tenant.objects.bulk_create(TenantFactory.build_batch(rows, tier=standard))
    members = [UserFactory() for _ in range(3)]
    Membership.objects.bulk_create(
        MembershipFactory.build(user=user, tenant=tenant) for tenant in tenants for user in members
    )
    slots = Slot.objects.bulk_create(SlotFactory.build_batch(rows, tier=standard, capacity=10, used=1))
    shared = slots[0]
    Assignment.objects.bulk_create(
        [Assignment(tenant=t, slot=s, started_at=now - timedelta(hours=2)) for t, s in zip(tenants, slots)]
        + [Assignment(tenant=t, slot=shared, started_at=now - timedelta(hours=5), ended_at=now - timedelta(hours=3),
                      end_reason=Assignment.EndReason.REBALANCED) for t in tenants]
    )
    sessions = WhatsAppSession.objects.bulk_create(
        WhatsAppSession(tenant=t, name=f"t{t.pk}", status=WhatsAppSession.Status.WORKING, wanted=True) for t in tenants
    )
    SessionEvent.objects.bulk_create(
        SessionEvent(session=session, status=session.status, slot=slot, note="placed")
        for session, slot in zip(sessions, slots)
        for _ in range(2)
    )
    PoolSnapshot.objects.bulk_create(
        PoolSnapshot(tier=standard, taken_at=now - timedelta(minutes=i), capacity=10 * rows, used=rows, waiting=0,
                     slots_by_state={"ready": rows})
        for i in range(rows)
    )
    Alert.objects.bulk_create(
        Alert(kind=AlertKind.SLOT_DOWN, key=str(slot.pk), message=f"Slot {slot} is down") for slot in slots
    )
    return shared


@pytest.mark.parametrize("rows", [10, 1000])
def test_admin_changelists_and_operations_pages_do_not_query_per_row(staff_client, django_assert_max_num_queries,
                                                                    rows):
    build_platform(rows)

    for page in PAGES:
        with django_assert_max_num_queries(MAX_QUERIES):
            response = staff_client.get(page)
        assert response.status_code == 200, page


def test_the_tenant_changelist_counts_members_per_tenant(staff_client):
    tenant = TenantFactory(name="Crowded")
    MembershipFactory.create_batch(3, tenant=tenant)

    html = staff_client.get("/admin/tenants/tenant/?q=Crowded").content.decode()

    assert '<td class="field-member_count">3</td>' in html


def test_history_inlines_show_the_latest_rows_and_link_the_full_history(staff_client):
    shared = build_platform(30)
    session = WhatsAppSession.objects.first()
    SessionEvent.objects.bulk_create(
        SessionEvent(session=session, status=session.status, note=f"event {i}") for i in range(30)
    )

    slot_page = staff_client.get(f"/admin/pooling/slot/{shared.pk}/change/").content.decode()
    session_page = staff_client.get(f"/admin/pooling/whatsappsession/{session.pk}/change/").content.decode()
    full_history = staff_client.get(f"/admin/pooling/assignment/?slot__id__exact={shared.pk}").content.decode()

    assert Assignment.objects.filter(slot=shared).count() == 31
    assert 'name="assignments-TOTAL_FORMS" value="20"' in slot_page
    assert f'/admin/pooling/assignment/?slot__id__exact={shared.pk}' in slot_page
    assert 'name="events-TOTAL_FORMS" value="20"' in session_page
    assert f'/admin/pooling/sessionevent/?session__id__exact={session.pk}' in session_page
    assert "31 assignments" in full_history

"""The Slot admin edits settings through pooling.services.update_slot, under the slot's row lock.

The race it closes: an operator opens a slot's page while a tenant is placed on
it; saving the form used to write back the `used` read when the page loaded,
giving the new tenant's place away.
"""

import pytest
from django.core.exceptions import ValidationError

from pooling import services
from pooling.models import Slot
from tests.factories import AssignmentFactory, SlotFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def slot_form(slot: Slot, **changes) -> dict:
    data = {
        "name": slot.name, "tier": slot.tier_id, "dialect": slot.dialect, "provisioner": slot.provisioner,
        "base_url": slot.base_url, "api_key": slot.api_key, "capacity": slot.capacity,
        "assignments-TOTAL_FORMS": "0", "assignments-INITIAL_FORMS": "0",
        "assignments-MIN_NUM_FORMS": "0", "assignments-MAX_NUM_FORMS": "0",
    }
    return {**data, **changes}


def test_saving_a_slot_in_the_admin_keeps_places_taken_since_the_page_loaded(staff_client):
    slot = SlotFactory(used=0, capacity=10)
    form = slot_form(slot, name="renamed")
    # A tenant is placed while the operator's page is open.
    AssignmentFactory(slot=slot)
    Slot.objects.filter(pk=slot.pk).update(used=1)

    response = staff_client.post(f"/admin/pooling/slot/{slot.pk}/change/", form)

    slot.refresh_from_db()
    assert response.status_code == 302
    assert slot.name == "renamed" and slot.used == 1


def test_the_admin_refuses_a_capacity_below_the_tenants_on_the_slot(staff_client):
    slot = SlotFactory(used=3, capacity=10)

    response = staff_client.post(f"/admin/pooling/slot/{slot.pk}/change/", slot_form(slot, capacity=2))

    slot.refresh_from_db()
    assert response.status_code == 200 and "3 tenants are on this slot" in response.content.decode()
    assert slot.capacity == 10


def test_update_slot_refuses_what_is_not_a_setting_and_a_capacity_below_used():
    slot = SlotFactory(used=3, capacity=10)

    with pytest.raises(ValueError):
        services.update_slot(slot_id=slot.pk, changes={"used": 0})
    with pytest.raises(ValidationError):
        services.update_slot(slot_id=slot.pk, changes={"capacity": 2})

    slot.refresh_from_db()
    assert (slot.used, slot.capacity) == (3, 10)

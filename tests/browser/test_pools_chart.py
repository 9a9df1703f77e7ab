"""The operations pools page draws its utilisation chart (server-side SVG, no CDN)."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from pooling.models import Slot
from pooling.optimizer import take_snapshots
from tests.browser.conftest import screenshot
from tests.factories import OperatorFactory, SlotFactory

pytestmark = pytest.mark.integration


def test_staff_sign_in_through_the_admin_and_see_the_utilisation_chart(page, running_platform):
    # given a pool with snapshots over the last hours
    staff = OperatorFactory()
    slot = SlotFactory(used=0, capacity=10)
    now = timezone.now()
    for hours_ago, used in ((3, 2), (2, 4), (1, 7), (0, 9)):
        Slot.objects.filter(pk=slot.pk).update(used=used)
        take_snapshots(now=now - timedelta(hours=hours_ago))

    # when staff sign in through the admin's login form and open the pools page
    page.goto(f"{running_platform.url}/admin/operations/pools/")
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    page.fill("#id_username", staff.username)
    page.fill("#id_password", "pw-for-tests")
    page.click("input[type=submit]")

    # then the chart is drawn, one line per tier with snapshots, and the admin's own styles load
    expect(page).to_have_url(re.compile(r"/admin/operations/pools/$"))
    chart = page.locator("#utilisation-chart svg")
    expect(chart).to_be_visible()
    standard = chart.locator('polyline[data-tier="standard"]')
    expect(standard).to_be_visible()
    expect(standard).to_have_attribute("points", re.compile(r"^(\d+\.\d,\d+\.\d ?){4}$"))
    assert page.evaluate("getComputedStyle(document.querySelector('#header')).backgroundColor") != "rgba(0, 0, 0, 0)"
    screenshot(page, "pools-utilisation-chart")
    assert page.errors == []

"""A session's status webhooks are separate requests and can overtake each other.

The sandbox (like WAHA) reports STARTING, SCAN_QR_CODE and WORKING within a
fraction of a second; when the WORKING request was handled before the
STARTING one, the session used to fall back to STARTING and stay there until
the next health check. The bridge's own timestamp on each webhook orders them.
"""

import time

import pytest

from tests.messaging.test_intake import post_waha
from tests.messaging.test_intake_inputs import session_status, session_status_now

pytestmark = pytest.mark.integration


def test_an_older_status_webhook_arriving_last_does_not_undo_a_newer_one(platform):
    # given: the bridge reported STARTING, then WORKING 0.2 s later
    started = time.time() - 1
    secret, name = platform.slot.webhook_secret, platform.session.name

    # when: WORKING is handled first and STARTING after it
    post_waha(platform.slot.pk, session_status(name, "WORKING", at=started + 0.2), secret)
    late = post_waha(platform.slot.pk, session_status(name, "STARTING", at=started), secret)

    # then: the session stays WORKING
    assert late.status_code == 200
    assert session_status_now(platform) == "WORKING"


def test_a_newer_status_webhook_still_changes_the_session(platform):
    # given: WORKING reported a second ago
    secret, name = platform.slot.webhook_secret, platform.session.name
    post_waha(platform.slot.pk, session_status(name, "WORKING", at=time.time() - 1), secret)

    # when: the bridge reports a failure now
    post_waha(platform.slot.pk, session_status(name, "FAILED"), secret)

    # then: it is taken
    assert session_status_now(platform) == "FAILED"

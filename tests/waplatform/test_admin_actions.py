"""The admin offers an action only on changelists whose rows it can apply to, and an action
run over a mixed selection changes only the rows it applies to, saying how many it left."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tenants.models import Tenant
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def _offered(client, changelist: str, query: str) -> set[str]:
    answer = client.get(reverse(f"admin:{changelist}_changelist") + query)
    assert answer.status_code == 200
    return {name for name, _ in answer.context["action_form"].fields["action"].choices if name}


@pytest.mark.parametrize(("changelist", "query", "offered", "not_offered"), [
    ("tenants_tenant", "?status__exact=suspended", {"reactivate", "issue_key"}, {"suspend"}),
    ("tenants_tenant", "?status__exact=active", {"suspend", "issue_key"}, {"reactivate"}),
    ("tenants_tenant", "", {"suspend", "reactivate"}, set()),
    ("tenants_apikey", "?revoked_at__isempty=0", set(), {"revoke"}),
    ("tenants_apikey", "?revoked_at__isempty=1", {"revoke"}, set()),
    ("mirror_deadletter", "?resolved_at__isempty=0", set(), {"retry"}),
    ("mirror_deadletter", "?resolved_at__isempty=1", {"retry"}, set()),
    ("agents_conversationstate", "?owner__exact=human", {"resume_automation"}, {"hand_off"}),
    ("agents_conversationstate", "?owner__exact=automated", {"hand_off", "resume_automation"}, set()),
    ("pooling_slot", "?state__exact=draining", {"health_check_now", "retire"}, {"drain"}),
    ("pooling_slot", "?state__exact=retired", set(), {"drain", "retire", "health_check_now"}),
    ("messaging_webhookdelivery", "?status__exact=pending", set(), {"replay"}),
    ("messaging_webhookdelivery", "?status__exact=dead", {"replay"}, set()),
])
def test_actions_are_offered_only_where_they_apply(admin_client, changelist, query, offered, not_offered):
    actions = _offered(admin_client, changelist, query)

    assert offered <= actions
    assert not (not_offered & actions)


@pytest.mark.parametrize(("action", "result", "message"), [
    ("suspend", Tenant.Status.SUSPENDED, "Suspended 1 tenant(s); 1 already suspended, left as they were."),
    ("reactivate", Tenant.Status.ACTIVE, "Reactivated 1 tenant(s); 1 already active, left as they were."),
])
def test_a_status_action_over_a_mixed_selection_changes_only_the_tenants_it_applies_to(admin_client, action,
                                                                                         result, message):
    # given one active and one suspended tenant, both selected
    active, suspended = TenantFactory(), TenantFactory(status=Tenant.Status.SUSPENDED)

    # when the operator runs the action over both
    answer = admin_client.post(reverse("admin:tenants_tenant_changelist"),
                               {"action": action, "_selected_action": [active.pk, suspended.pk]}, follow=True)

    # then both end in the action's status and the message counts the one that changed
    assert set(Tenant.objects.values_list("status", flat=True)) == {result}
    assert [str(m) for m in get_messages(answer.wsgi_request)] == [message]

"""suspend_tenant and reactivate_tenant: one tenant by slug, through the services."""

import io

import pytest
from django.core.management import CommandError, call_command

from tenants.models import Tenant
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_suspend_then_reactivate_by_slug():
    tenant = TenantFactory()
    out = io.StringIO()

    call_command("suspend_tenant", tenant.slug, stdout=out)
    suspended = Tenant.objects.get(pk=tenant.pk).status
    call_command("reactivate_tenant", tenant.slug, stdout=out)

    assert (suspended, Tenant.objects.get(pk=tenant.pk).status) == (Tenant.Status.SUSPENDED, Tenant.Status.ACTIVE)
    assert out.getvalue().splitlines() == [f"{tenant.slug} is suspended", f"{tenant.slug} is active"]


@pytest.mark.parametrize("command", ["suspend_tenant", "reactivate_tenant"])
def test_an_unknown_slug_is_named_in_one_line(command):
    with pytest.raises(CommandError, match="No tenant with slug 'nobody'"):
        call_command(command, "nobody")

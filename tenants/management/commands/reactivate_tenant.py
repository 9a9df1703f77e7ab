from tenants.management.tenant_status_command import TenantStatusCommand
from tenants.models import Tenant


class Command(TenantStatusCommand):
    help = "Reactivate a suspended tenant; what waited (sends, webhook deliveries) is enqueued again."
    status = Tenant.Status.ACTIVE

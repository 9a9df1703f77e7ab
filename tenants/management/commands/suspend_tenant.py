from tenants.management.tenant_status_command import TenantStatusCommand
from tenants.models import Tenant


class Command(TenantStatusCommand):
    help = "Suspend a tenant: API writes answer 403 tenant_suspended, queued sends and webhook deliveries wait, agents stop."
    status = Tenant.Status.SUSPENDED

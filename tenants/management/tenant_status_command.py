from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import set_tenant_status


class TenantStatusCommand(BaseCommand):
    """`suspend_tenant` and `reactivate_tenant`: one tenant, by slug, to `status` through the service."""

    status: str

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}: see admin → Tenants for the slugs.")
        tenant = set_tenant_status(tenant=tenant, status=self.status)
        self.stdout.write(self.style.SUCCESS(f"{tenant.slug} is {tenant.status}"))

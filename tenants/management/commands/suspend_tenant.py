from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import suspend_tenant


class Command(BaseCommand):
    help = "Suspend a tenant: API writes answer 403 tenant_suspended, queued sends and webhook deliveries wait, agents stop."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}: see admin → Tenants for the slugs.")
        tenant = suspend_tenant(tenant=tenant)
        self.stdout.write(self.style.SUCCESS(f"{tenant.slug} is {tenant.status}"))

from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import reactivate_tenant


class Command(BaseCommand):
    help = "Reactivate a suspended tenant; what waited (sends, webhook deliveries) is enqueued again."

    def add_arguments(self, parser):
        parser.add_argument("slug")

    def handle(self, *args, slug, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}: see admin → Tenants for the slugs.")
        tenant = reactivate_tenant(tenant=tenant)
        self.stdout.write(self.style.SUCCESS(f"{tenant.slug} is {tenant.status}"))

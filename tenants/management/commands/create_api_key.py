from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tenant
from tenants.services import issue_api_key


class Command(BaseCommand):
    help = "Issue a new API key for a tenant and print it alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--name", default="cli")

    def handle(self, *args, slug, name, **options):
        try:
            tenant = Tenant.objects.get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}; `manage.py create_tenant` makes one.")
        issued = issue_api_key(tenant=tenant, name=name)
        self.stdout.write(f"New API key {issued.api_key.prefix} for {tenant.slug} (shown once):")
        self.stdout.write(issued.plaintext)

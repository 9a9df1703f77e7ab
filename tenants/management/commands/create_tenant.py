from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tier
from tenants.services import create_tenant


class Command(BaseCommand):
    help = "Create a tenant and print its new API key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--tier", default="standard", help="standard, professional or enterprise")
        parser.add_argument("--slug", default="")
        parser.add_argument("--time-zone", default="UTC")

    def handle(self, *args, name, tier, slug, time_zone, **options):
        try:
            tier_row = Tier.objects.get(name=tier)
        except Tier.DoesNotExist:
            names = ", ".join(Tier.objects.values_list("name", flat=True))
            raise CommandError(f"Unknown tier {tier!r}; choose one of: {names}")
        from django.core.exceptions import ValidationError

        try:
            tenant, issued = create_tenant(name=name, tier=tier_row, slug=slug, time_zone=time_zone)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
        self.stdout.write(f"Created tenant {tenant.slug} (id {tenant.pk}, tier {tier_row.name}). API key:")
        self.stdout.write(issued.plaintext)

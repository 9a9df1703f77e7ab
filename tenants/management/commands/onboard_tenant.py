from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants.models import Tier
from tenants.services import onboard_tenant


class Command(BaseCommand):
    help = ("Onboard a tenant: create it, its first API key and an inbox user who owns it. "
            "The key (and a generated password) are printed once.")

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--inbox-user", required=True, help="username of the tenant's first inbox member")
        parser.add_argument("--inbox-email", default="")
        parser.add_argument("--inbox-password", default="", help="default: generated and printed once")
        parser.add_argument("--tier", default="standard", help="standard, professional or enterprise")
        parser.add_argument("--slug", default="")
        parser.add_argument("--time-zone", default="UTC")

    def handle(self, *args, name, inbox_user, inbox_email, inbox_password, tier, slug, time_zone, **options):
        tier_row = Tier.objects.filter(name=tier).first()
        if tier_row is None:
            names = ", ".join(Tier.objects.values_list("name", flat=True))
            raise CommandError(f"--tier {tier!r} does not exist; choose one of: {names}")
        try:
            done = onboard_tenant(name=name, tier=tier_row, slug=slug, time_zone=time_zone,
                                  inbox_username=inbox_user, inbox_email=inbox_email, inbox_password=inbox_password)
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        write = self.stdout.write
        write(self.style.SUCCESS(f"Onboarded {done.tenant.name} ({done.tenant.slug}, tier {tier_row.name})."))
        write(f"API key (shown once): {done.api_key.plaintext}")
        if done.password:
            write(f"Inbox user {done.user.get_username()}, password (shown once): {done.password}")
        else:
            write(f"Inbox user {done.user.get_username()} existed: now a member, password unchanged.")
        write("Next:")
        for step in done.next_steps(settings.PUBLIC_BASE_URL):
            write(f"  - {step}")

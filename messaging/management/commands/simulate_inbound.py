from django.core.management.base import BaseCommand, CommandError

from messaging.demo import simulate_inbound
from messaging.services import SendRefused, normalise_recipient
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Make a tenant's sandbox worker deliver an inbound WhatsApp message (sandbox slots only)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--from", dest="sender", required=True, help="sender's number, E.164 digits")
        parser.add_argument("--text", required=True)
        parser.add_argument("--name", default="", help="sender's profile name")

    def handle(self, *args, slug, sender, text, name, **options):
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant {slug!r}.")
        try:
            digits = normalise_recipient(sender)
        except ValueError:
            raise CommandError(
                f"--from {sender!r} is not a phone number: give the sender's number in international format, "
                "digits only (e.g. --from 15550001111).") from None
        try:
            message_id = simulate_inbound(tenant=tenant, sender=digits, text=text, name=name)
        except (ValueError, SendRefused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Sandbox delivered inbound message {message_id} from {digits}."))

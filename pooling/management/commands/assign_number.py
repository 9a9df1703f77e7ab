from django.core.management.base import BaseCommand, CommandError

from pooling import services
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Assign a Cloud API number (Meta's phone_number_id) of the operator's Meta app to a tenant, "
            "or --release it. A tenant can start a session only on a number it holds.")

    def add_arguments(self, parser):
        parser.add_argument("phone_number_id")
        parser.add_argument("tenant", nargs="?", help="the tenant's slug (not with --release)")
        parser.add_argument("--release", action="store_true", help="take the number back from whoever holds it")

    def handle(self, *args, phone_number_id, tenant, release, **options):
        try:
            if release:
                released = services.release_number(phone_number_id=phone_number_id)
                if released is None:
                    raise CommandError(f"No tenant holds Cloud number {phone_number_id}.")
                self.stdout.write(self.style.SUCCESS(f"released {phone_number_id} from {released.tenant.slug}"))
                return
            if not tenant:
                raise CommandError("Name the tenant (its slug), or pass --release.")
            holder = Tenant.objects.filter(slug=tenant).first()
            if holder is None:
                raise CommandError(f"Unknown tenant {tenant!r}: give its slug (admin → Tenants).")
            number = services.assign_number(phone_number_id=phone_number_id, tenant=holder)
        except services.NumberError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{number.phone_number_id} is assigned to {holder.slug}"))

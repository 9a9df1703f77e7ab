from django.core.management.base import BaseCommand, CommandError

from pooling import services
from pooling.models import Slot


class Command(BaseCommand):
    help = "Move every tenant off a slot onto others of its tier, then retire it."

    def add_arguments(self, parser):
        parser.add_argument("slot", help="slot id or name")

    def handle(self, *args, slot, **options):
        row = Slot.objects.filter(pk=int(slot)).first() if slot.isdigit() else Slot.objects.filter(name=slot).first()
        if row is None:
            raise CommandError(f"No slot {slot!r}; `manage.py pool_status --slots` lists them.")
        moved = services.drain_slot(slot_id=row.pk)
        row.refresh_from_db()
        self.stdout.write(f"drained {row}: moved {moved} tenant(s); slot is {row.state}")

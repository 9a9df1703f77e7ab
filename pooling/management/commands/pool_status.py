from django.core.management.base import BaseCommand

from pooling.models import Slot
from pooling.selectors import pool_statuses


class Command(BaseCommand):
    help = "Show each tier's pool: slots by state, capacity, used, waiting tenants, utilisation."

    def add_arguments(self, parser):
        parser.add_argument("--slots", action="store_true", help="also list every live slot")

    def handle(self, *args, slots, **options):
        self.stdout.write(f"{'tier':<14}{'slots':>7}{'capacity':>10}{'used':>7}{'waiting':>9}{'util %':>8}  by state")
        for pool in pool_statuses():
            total = sum(pool.slots_by_state.values())
            states = ", ".join(f"{k} {v}" for k, v in sorted(pool.slots_by_state.items())) or "-"
            self.stdout.write(
                f"{pool.tier.name:<14}{total:>7}{pool.capacity:>10}{pool.used:>7}{pool.waiting:>9}"
                f"{pool.utilisation:>8}  {states}"
            )
        if slots:
            for slot in Slot.objects.exclude(state=Slot.State.RETIRED).select_related("tier"):
                self.stdout.write(
                    f"  {slot}: {slot.tier.name} {slot.state} {slot.dialect} {slot.used}/{slot.capacity} {slot.base_url}"
                )

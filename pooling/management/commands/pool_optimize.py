from django.core.management.base import BaseCommand

from pooling import services


class Command(BaseCommand):
    help = "Run one optimisation cycle now: pack, retire idle slots, keep a warm spare. Prints what changed."

    def handle(self, *args, **options):
        for line in services.optimize_pools().lines():
            self.stdout.write(line)

from django.core.management.base import BaseCommand

from pooling import services


class Command(BaseCommand):
    help = "Run one health-check cycle now (failing slots degrade, dead ones fail over) and print what changed."

    def handle(self, *args, **options):
        for line in services.run_health_checks().lines():
            self.stdout.write(line)

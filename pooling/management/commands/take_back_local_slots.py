from django.core.management.base import BaseCommand

from pooling import services


class Command(BaseCommand):
    help = ("Start the sandbox bridge workers of this host's local slots again (same slots, new processes) "
            "and remove stale bridge pid files. The launcher runs it on start.")

    def handle(self, *args, **options):
        for line in services.take_back_local_slots().lines():
            self.stdout.write(line)

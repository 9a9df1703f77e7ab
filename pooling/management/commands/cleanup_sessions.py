from django.conf import settings
from django.core.management.base import BaseCommand

from pooling import services


class Command(BaseCommand):
    help = "Stop sessions idle longer than POOL_SESSION_IDLE_HOURS and release their slots."

    def handle(self, *args, **options):
        stopped = services.cleanup_idle_sessions()
        for slug in stopped:
            self.stdout.write(f"stopped idle session of {slug}")
        self.stdout.write(f"{len(stopped)} session(s) idle over {settings.POOL_SESSION_IDLE_HOURS:g} h stopped")

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from pooling import services


def unapplied_migrations() -> int:
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


class Command(BaseCommand):
    help = ("Start the sandbox bridge workers of this host's local slots again (same slots, new processes) "
            "and remove stale bridge pid files. The launcher runs it on start.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait-for-migrations", type=float, default=0, metavar="SECONDS",
            help="on a host without the web role (which migrates), wait up to this long for the schema")

    def handle(self, *args, wait_for_migrations: float = 0, **options):
        deadline = time.monotonic() + wait_for_migrations
        pending = unapplied_migrations()
        if pending and wait_for_migrations:
            self.stdout.write(f"waiting for {pending} database migrations (a host with the web role applies them)")
            self.stdout.flush()
        while pending and time.monotonic() < deadline:
            time.sleep(1)
            pending = unapplied_migrations()
        if pending:
            raise CommandError(f"{pending} database migrations are not applied: run `manage.py migrate` "
                               "(a host with the web role does it on start), then start this host again")
        for line in services.take_back_local_slots().lines():
            self.stdout.write(line)

"""Backfill, repair or verify the Firestore mirror from the database (docs/firestore.md)."""

from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from google.api_core.exceptions import RetryError

from mirror import backfill, client
from tenants.models import Tenant

BAR_WIDTH = 30


def parse_since(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since: {value!r} is not a date (YYYY-MM-DD) or an ISO date-time")
        parsed = datetime.combine(day, time.min)
    return parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed, dt_timezone.utc)


class Command(BaseCommand):
    help = "Write every tenant's (or one tenant's) mirror documents from the database; --verify compares instead."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant")
        parser.add_argument("--since", metavar="DATE", help="only conversations and messages active since DATE")
        parser.add_argument("--verify", action="store_true", help="report documents that differ; write nothing")
        parser.add_argument("--restart", action="store_true", help="ignore an unfinished run's checkpoint")
        parser.add_argument("--force", action="store_true",
                            help="overwrite even documents whose stored status or snapshot looks newer")
        parser.add_argument("--batch-size", type=int, default=200, help="documents per Firestore commit (max 500)")
        parser.add_argument("--retry-for", type=float, default=60.0, metavar="SECONDS",
                            help="keep retrying an unavailable Firestore this long before stopping (0: not at all)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")

    def handle(self, *args, **options):
        if not client.is_enabled():
            raise CommandError("The Firestore mirror is off: set FIRESTORE_PROJECT (docs/firestore.md).")
        since = parse_since(options["since"]) if options["since"] else None
        tenants = Tenant.objects.select_related("tier").order_by("pk")
        if options["tenant"]:
            tenants = tenants.filter(slug=options["tenant"])
            if not tenants.exists():
                raise CommandError(f"No tenant with slug {options['tenant']!r}.")
        self._show_progress = not options["no_progress"]
        try:
            if options["verify"]:
                self._verify(tenants, since, options["batch_size"], options["retry_for"])
            else:
                self._sync(tenants, since, options)
        except (*client.TRANSIENT_ERRORS, RetryError) as exc:
            raise CommandError(f"Firestore is unavailable ({exc}); run the command again to resume.") from exc

    def _sync(self, tenants, since, options) -> None:
        total = 0
        for tenant in tenants:
            result = backfill.sync_tenant(tenant=tenant, since=since, batch_size=options["batch_size"],
                                          restart=options["restart"], force=options["force"],
                                          retry_for=options["retry_for"],
                                          progress=self._progress(tenant))
            total += result.written
            resumed = " (resumed)" if result.resumed else ""
            self.stdout.write(f"{tenant.slug}: {result.written} documents written{resumed}")
        self.stdout.write(self.style.SUCCESS(f"Mirror synced: {total} documents written."))

    def _verify(self, tenants, since, batch_size, retry_for) -> None:
        checked = differing = 0
        for tenant in tenants:
            result = backfill.verify_tenant(tenant=tenant, since=since, batch_size=batch_size, retry_for=retry_for,
                                            progress=self._progress(tenant))
            checked += result.checked
            differing += len(result.differing)
            for path, lines in sorted(result.differing.items()):
                self.stdout.write(f"DIFFERS {path}")
                for line in lines:
                    self.stdout.write(f"    {line}")
        if differing:
            # A non-zero exit lets a cron job or CI notice a drifting mirror.
            raise CommandError(f"{differing} of {checked} documents differ; `firestore_sync` repairs them.")
        self.stdout.write(self.style.SUCCESS(f"Mirror verified: {checked} documents match."))

    def _progress(self, tenant):
        def show(stage: str, done: int, total: int) -> None:
            if not self._show_progress:
                return
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            end = "\n" if done >= total else ""
            self.stdout.write(f"\r{tenant.slug} {stage:<22} [{bar}] {done}/{total}", ending=end)
            self.stdout.flush()

        return show

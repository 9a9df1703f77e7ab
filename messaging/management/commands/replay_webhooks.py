import re
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from messaging.webhooks_out import replay_dead
from tenants.models import Tenant

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str):
    match = _DURATION.match(value)
    if match:
        return timezone.now() - timedelta(**{_UNITS[match[2]]: int(match[1])})
    when = parse_datetime(value)
    if when is None:
        raise CommandError("--since takes an ISO date-time (2026-01-31T12:00:00Z) or a duration (30m, 6h, 2d).")
    return when if timezone.is_aware(when) else timezone.make_aware(when)


class Command(BaseCommand):
    help = "Send dead-lettered webhook deliveries again (same event ids, so receivers can dedupe)."

    def add_arguments(self, parser):
        parser.add_argument("--endpoint", type=int, help="only this endpoint id")
        parser.add_argument("--tenant", help="only this tenant's endpoints (slug)")
        parser.add_argument("--since", help="only deliveries created since (ISO date-time or 30m/6h/2d)")

    def handle(self, *args, endpoint=None, tenant=None, since=None, **options):
        tenant_obj = None
        if tenant:
            tenant_obj = Tenant.objects.filter(slug=tenant).first()
            if tenant_obj is None:
                raise CommandError(f"No tenant {tenant!r}.")
        count = replay_dead(endpoint_id=endpoint, since=parse_since(since) if since else None, tenant=tenant_obj)
        self.stdout.write(self.style.SUCCESS(f"{count} dead deliveries queued again on 'webhooks'."))

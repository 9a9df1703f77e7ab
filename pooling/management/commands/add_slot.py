from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from pooling import services
from tenants.models import Tier


class Command(BaseCommand):
    help = "Register a bridge server as a slot; it is checked at once and marked ready when it answers."

    def add_arguments(self, parser):
        parser.add_argument("--dialect", required=True, choices=["waha", "cloud", "sandbox"])
        parser.add_argument("--url", required=True)
        parser.add_argument("--api-key", required=True)
        parser.add_argument("--tier", required=True)
        parser.add_argument("--capacity", required=True, type=int)
        parser.add_argument("--name", default="")

    def handle(self, *args, dialect, url, api_key, tier, capacity, name, **options):
        tier_row = Tier.objects.filter(name=tier).first()
        if tier_row is None:
            raise CommandError(f"Unknown tier {tier!r}; choose one of: {', '.join(Tier.objects.values_list('name', flat=True))}")
        if capacity < 1:
            raise CommandError("--capacity must be at least 1")
        try:
            slot = services.register_static_slot(
                dialect=dialect, base_url=url, api_key=api_key, tier=tier_row, capacity=capacity, name=name
            )
        except services.SlotUnreachable as exc:
            raise CommandError(str(exc))
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items()))
        self.stdout.write(self.style.SUCCESS(f"added slot {slot} (id {slot.pk}): {dialect} {slot.base_url}, {tier} x{capacity}, ready"))

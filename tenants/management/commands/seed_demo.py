from django.core.management.base import BaseCommand

from tenants.demo import seed_demo


class Command(BaseCommand):
    help = "Seed tiers, a demo operator and one tenant per tier (idempotent; keys are printed once)."

    def handle(self, *args, **options):
        result = seed_demo()
        self.stdout.write(
            f"Demo operator: {result.operator_username} / {result.operator_password} "
            f"(tenant agents: <slug>-agent, same password)"
        )
        for slug, key in result.new_keys.items():
            self.stdout.write(self.style.SUCCESS(f"Created demo tenant {slug}; API key (shown once): {key}"))
        for slug in result.existing:
            self.stdout.write(f"Demo tenant {slug} already exists; `manage.py create_api_key {slug}` issues a key.")

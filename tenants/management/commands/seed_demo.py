from django.core.management.base import BaseCommand

from tenants.demo import DEMO_OPERATOR, passwords_dir, seed_demo


class Command(BaseCommand):
    help = ("Seed tiers and, into a new database only (and unless DEMO=false), a demo operator and one "
            "tenant per tier; passwords and API keys are printed once.")

    def handle(self, *args, **options):
        result = seed_demo()
        if not result.seeded:
            self.stdout.write(f"Demo: {result.reason}")
            return
        for username, password in result.passwords.items():
            who = "Demo operator" if username == DEMO_OPERATOR else "Demo tenant agent"
            self.stdout.write(f"{who}: {username} / {password}")
        self.stdout.write(f"Each demo user has a password of its own, shown once here and kept in "
                          f"{passwords_dir()}/<username> (0600); change them in the admin.")
        for slug, key in result.new_keys.items():
            self.stdout.write(self.style.SUCCESS(f"Created demo tenant {slug}; API key (shown once): {key}"))

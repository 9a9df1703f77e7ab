"""Run one sandbox bridge worker (thin: the worker itself never needs Django)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pooling.bridges.sandbox.server import add_arguments, check_host, config_from, serve


class Command(BaseCommand):
    help = "Run a sandbox bridge worker on loopback (simulates WhatsApp; not WhatsApp)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: object, **options: object) -> None:
        if options.get("auto_scan_seconds") is None:
            options["auto_scan_seconds"] = getattr(settings, "SANDBOX_AUTO_SCAN_SECONDS", None)
        try:
            config = config_from(options)
            check_host(str(options["host"]), config)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"sandbox worker on http://{options['host']}:{options['port']} capacity {config.capacity} "
            f"(auto-scan {config.auto_scan_seconds}s)"))
        serve(str(options["host"]), int(options["port"]), config)

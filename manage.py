#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "waplatform.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except Exception as exc:
        from waplatform.unreachable import describe

        line = describe(exc)
        if line is None:
            raise
        sys.stderr.write(f"CommandError: {line}\n")
        sys.exit(1)

"""Re-encrypt every secret at rest with the first SECRETS_ENCRYPTION_KEYS key.

Run after putting a new key first (old keys still listed after it); when it
reports nothing left under old keys, the old keys can be removed. Idempotent:
values already under the first key are left as they are, so a second run (or
a run after an interruption) only does what is left. docs/security.md has the
whole procedure.
"""

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from waplatform import fields


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the first SECRETS_ENCRYPTION_KEYS key (idempotent)."

    def handle(self, *args, **options):
        total = 0
        for model, name in fields.encrypted_fields():
            field = model._meta.get_field(name)
            label = f"{model._meta.label}.{name}"
            # The stored tokens themselves (the ORM would hand back plaintext).
            table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(field.column)
            pk_column = connection.ops.quote_name(model._meta.pk.column)
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT {pk_column}, {column} FROM {table} WHERE {column} <> ''")
                rows = cursor.fetchall()
            stale = [(pk, stored) for pk, stored in rows if not fields.is_current(stored)]
            for done, (pk, stored) in enumerate(stale, start=1):
                with transaction.atomic():
                    # Written only if nobody changed the value meanwhile (a save re-encrypts anyway).
                    model._base_manager.filter(pk=pk, **{f"{name}__exact": fields.Ciphertext(stored)}).update(
                        **{name: fields.reencrypt(stored)})
                if done % 100 == 0:
                    self.stdout.write(f"  {label}: {done}/{len(stale)}")
            total += len(stale)
            self.stdout.write(f"{label}: {len(stale)} re-encrypted, {len(rows) - len(stale)} already current")
        self.stdout.write(self.style.SUCCESS(
            f"Done: {total} value(s) re-encrypted; every secret is now under the first key."))

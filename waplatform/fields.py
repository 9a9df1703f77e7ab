"""Secrets at rest: EncryptedTextField stores Fernet tokens made with SECRETS_ENCRYPTION_KEYS.

A database dump or a read replica handed to the wrong person must not hold the
Meta tokens, bridge keys, webhook secrets and LLM keys in the clear. The key
comes from the environment, not the database (docs/security.md, "Secrets at rest").

Stored form: "enc:v1:<Fernet token>". The version prefix lets a later scheme
sit next to this one; MultiFernet (first key encrypts, every key decrypts)
lets a new key be introduced before old tokens are re-encrypted by
`manage.py rotate_secrets`. An empty value is stored empty, so "is one set?"
stays a plain comparison. Encrypted columns cannot be filtered on (every
encryption of the same value differs).
"""

from __future__ import annotations

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models

PREFIX = "enc:v1:"


class Ciphertext(str):
    """A value that is already a stored token (rotate_secrets writes these back as they are)."""


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("SECRETS_ENCRYPTION_KEYS is empty; secrets at rest need a key.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"SECRETS_ENCRYPTION_KEYS holds a key that is not a Fernet key ({exc}); make one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'") from None


def keys() -> tuple[str, ...]:
    return tuple(k.strip() for k in settings.SECRETS_ENCRYPTION_KEYS if k.strip())


def encrypt(plaintext: str) -> Ciphertext:
    return Ciphertext(PREFIX + _fernet(keys()).encrypt(plaintext.encode()).decode())


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        # Written before the column was encrypted and not yet migrated: readable, and the
        # next save (or the data migration) encrypts it.
        return stored
    try:
        return _fernet(keys()).decrypt(stored[len(PREFIX):].encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret does not decrypt with any key in SECRETS_ENCRYPTION_KEYS: the key it was "
            "encrypted with is missing (keep old keys after the new first one until rotate_secrets has run)."
        ) from None


def is_current(stored: str) -> bool:
    """True when `stored` is a token of the first (encrypting) key: nothing for rotation to do."""
    if not stored.startswith(PREFIX):
        return False
    try:
        Fernet(keys()[0].encode()).decrypt(stored[len(PREFIX):].encode())
    except InvalidToken:
        return False
    return True


def reencrypt(stored: str) -> Ciphertext:
    if not stored.startswith(PREFIX):
        return encrypt(stored)
    # MultiFernet.rotate keeps the token's original timestamp.
    return Ciphertext(PREFIX + _fernet(keys()).rotate(stored[len(PREFIX):].encode()).decode())


class WriteOnlySecretInput(forms.PasswordInput):
    """Never renders the stored value back; a blank submit leaves it unchanged."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"autocomplete": "new-password", "placeholder": "unchanged if blank", **(attrs or {})},
                         render_value=False)


class EncryptedTextField(models.TextField):
    description = "Text encrypted at rest (SECRETS_ENCRYPTION_KEYS)"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "" or isinstance(value, Ciphertext):
            return value
        return encrypt(str(value))

    def value_to_string(self, obj):
        # dumpdata writes this: a fixture file is a database dump too, so it holds the token.
        value = self.value_from_object(obj)
        return encrypt(value) if value else value

    def to_python(self, value):
        # loaddata reads a token back as a token, stored as it is (a plaintext value, as a
        # hand-written fixture has, is encrypted on save like any other). One that no key
        # opens is refused here rather than stored and found unreadable at its first use.
        if isinstance(value, str) and value.startswith(PREFIX) and not isinstance(value, Ciphertext):
            try:
                _fernet(keys()).decrypt(value[len(PREFIX):].encode())
            except InvalidToken:
                raise ValidationError("This is an encrypted secret that no key in SECRETS_ENCRYPTION_KEYS "
                                      "decrypts; load it where the key it was made with is set.") from None
            return Ciphertext(value)
        return super().to_python(value)

    def formfield(self, **kwargs):
        # Admin forms: a password input that never shows the secret, optional (blank = keep).
        kwargs.update({"widget": WriteOnlySecretInput, "required": False})
        return super().formfield(**{"form_class": forms.CharField, **kwargs})

    def save_form_data(self, instance, data):
        if data in (None, ""):
            return  # blank in a form means "unchanged": the form never had the value to send back
        super().save_form_data(instance, data)


def encrypted_fields() -> list[tuple[type[models.Model], str]]:
    """Every (model, field name) stored encrypted, for rotate_secrets and the data migrations' docs."""
    from django.apps import apps

    return [(model, field.name) for model in apps.get_models() for field in model._meta.concrete_fields
            if isinstance(field, EncryptedTextField)]


def encrypt_existing(app_label: str, model_name: str, *field_names: str):
    """A RunPython pair for the migration that turns plaintext columns into EncryptedTextFields.

    Forward: every non-empty value is written back through the field (which encrypts;
    a value already encrypted reads back decrypted first, so running twice is harmless).
    Backward: the plaintext goes back with raw SQL, since the field would encrypt it again.
    """

    def forward(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        for row in model.objects.using(schema_editor.connection.alias).only("pk", *field_names).iterator():
            changes = {name: getattr(row, name) for name in field_names if getattr(row, name)}
            if changes:
                model.objects.using(schema_editor.connection.alias).filter(pk=row.pk).update(
                    **{name: encrypt(value) for name, value in changes.items()})

    def backward(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        connection = schema_editor.connection
        table = connection.ops.quote_name(model._meta.db_table)
        for row in model.objects.using(connection.alias).only("pk", *field_names).iterator():
            for name in field_names:
                column = connection.ops.quote_name(model._meta.get_field(name).column)
                with connection.cursor() as cursor:
                    cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [getattr(row, name) or "", row.pk])

    return forward, backward

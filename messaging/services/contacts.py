"""Changes members make to a contact: its name and the tenant's custom attributes."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import transaction

from messaging.models import Contact
from waplatform.events import publish_event

MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 8_000


def contact_data(contact: Contact) -> dict:
    return {"id": contact.pk, "wa_id": contact.wa_id, "name": contact.name, "attributes": contact.attributes,
            "sandbox": contact.is_sandbox}


def _clean_attributes(attributes) -> dict:
    if not isinstance(attributes, dict):
        raise ValidationError({"attributes": 'Attributes are an object, e.g. {"plan": "gold", "customer_id": 42}.'})
    bad = [key for key, value in attributes.items()
           if not str(key).strip() or len(str(key)) > 64 or isinstance(value, (dict, list))]
    if bad:
        raise ValidationError({"attributes": f"Names of 1-64 characters with a text, number, true/false or null "
                                             f"value each; not {bad[:3]}."})
    if len(attributes) > MAX_ATTRIBUTES or len(json.dumps(attributes)) > MAX_ATTRIBUTES_BYTES:
        raise ValidationError({"attributes": f"At most {MAX_ATTRIBUTES} attributes and {MAX_ATTRIBUTES_BYTES} bytes."})
    return {str(key).strip(): value for key, value in attributes.items()}


@transaction.atomic
def update_contact(*, contact: Contact, name: str | None = None, attributes: dict | None = None) -> Contact:
    """A name given here is kept: WhatsApp's push name no longer overwrites it (Contact.name_edited)."""
    contact = Contact.objects.select_for_update().get(pk=contact.pk)
    fields = []
    if name is not None:
        contact.name, contact.name_edited = name.strip()[:255], bool(name.strip())
        fields += ["name", "name_edited"]
    if attributes is not None:
        contact.attributes = _clean_attributes(attributes)
        fields.append("attributes")
    if fields:
        contact.save(update_fields=fields)
        publish_event(tenant_id=contact.tenant_id, type="contact.updated", data=contact_data(contact))
    return contact

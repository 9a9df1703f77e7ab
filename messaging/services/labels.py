"""Labels: the tenant's tags for conversations, filtered on in the inbox."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from messaging.models import Conversation, Label
from messaging.services.activity import record_activity
from messaging.services.lifecycle import lock_conversation
from tenants.models import Tenant
from waplatform.events import publish_event

LABEL_NAME = re.compile(r"^[\w][\w .:/+-]{0,63}$")
MAX_LABELS_PER_CONVERSATION = 20


def clean_label_name(name: str) -> str:
    name = " ".join(str(name).split()).lower()
    if not LABEL_NAME.match(name):
        raise ValidationError({"name": f"{name!r} is not a label name: 1-64 letters, digits, spaces or . : / + - _ "
                                       "starting with a letter or digit."})
    return name


def _label_data(label: Label) -> dict:
    return {"id": label.pk, "name": label.name, "color": label.color}


@transaction.atomic
def create_label(*, tenant: Tenant, name: str, color: str = "") -> Label:
    name = clean_label_name(name)
    try:
        with transaction.atomic():
            label = Label.objects.create(tenant=tenant, name=name, color=color[:16])
    except IntegrityError:
        raise ValidationError({"name": f"The label {name!r} exists already."}) from None
    publish_event(tenant_id=tenant.pk, type="label.created", data=_label_data(label))
    return label


@transaction.atomic
def delete_label(*, label: Label) -> None:
    data = _label_data(label)
    tenant_id = label.tenant_id
    label.delete()
    publish_event(tenant_id=tenant_id, type="label.deleted", data=data)


@transaction.atomic
def set_conversation_labels(*, conversation: Conversation, names: list[str], by=None) -> Conversation:
    """The conversation's labels become exactly `names`; labels new to the tenant are created."""
    wanted = sorted({clean_label_name(name) for name in names})
    if len(wanted) > MAX_LABELS_PER_CONVERSATION:
        raise ValidationError({"labels": f"At most {MAX_LABELS_PER_CONVERSATION} labels per conversation."})
    conversation = lock_conversation(conversation_id=conversation.pk)
    before = set(conversation.labels.values_list("name", flat=True))
    if before == set(wanted):
        return conversation
    labels = []
    for name in wanted:
        label, created = Label.objects.get_or_create(tenant_id=conversation.tenant_id, name=name)
        if created:
            publish_event(tenant_id=conversation.tenant_id, type="label.created", data=_label_data(label))
        labels.append(label)
    conversation.labels.set(labels)
    record_activity(conversation=conversation, kind="labels_changed", actor=by,
                    data={"added": sorted(set(wanted) - before), "removed": sorted(before - set(wanted))})
    return conversation

"""Canned replies: a tenant's saved answers, inserted with /<short code> in the inbox."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from messaging.models import CannedReply
from tenants.models import Tenant
from waplatform.events import publish_event

SHORT_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _clean(short_code: str, content: str) -> tuple[str, str]:
    short_code = short_code.strip().lstrip("/").lower()
    if not SHORT_CODE.match(short_code):
        raise ValidationError({"short_code": f"{short_code!r}: use 1-32 lowercase letters, digits, - or _, "
                                             "e.g. \"thanks\" (typed as /thanks)."})
    if not content.strip():
        raise ValidationError({"content": "A canned reply needs its text."})
    return short_code, content


def _saved(reply: CannedReply, event_type: str) -> CannedReply:
    try:
        with transaction.atomic():
            reply.save()
    except IntegrityError:
        raise ValidationError({"short_code": f"/{reply.short_code} exists already; pick another code."}) from None
    publish_event(tenant_id=reply.tenant_id, type=event_type,
                  data={"id": reply.pk, "short_code": reply.short_code})
    return reply


@transaction.atomic
def create_canned_reply(*, tenant: Tenant, short_code: str, content: str) -> CannedReply:
    short_code, content = _clean(short_code, content)
    return _saved(CannedReply(tenant=tenant, short_code=short_code, content=content), "canned_reply.created")


@transaction.atomic
def update_canned_reply(*, reply: CannedReply, short_code: str | None = None,
                        content: str | None = None) -> CannedReply:
    reply.short_code, reply.content = _clean(reply.short_code if short_code is None else short_code,
                                             reply.content if content is None else content)
    return _saved(reply, "canned_reply.updated")


@transaction.atomic
def delete_canned_reply(*, reply: CannedReply) -> None:
    data = {"id": reply.pk, "short_code": reply.short_code}
    tenant_id = reply.tenant_id
    reply.delete()
    publish_event(tenant_id=tenant_id, type="canned_reply.deleted", data=data)

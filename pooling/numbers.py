"""Cloud API numbers belong to tenants by assignment (docs/security.md, "Tenants and numbers").

A `phone_number_id` names a WhatsApp number to Meta; whoever may put it on a
session sends as that number and receives its customers' messages. So a
tenant names only numbers it holds: assigned by staff, or claimed by proving
that its own Meta access token reads the number on Graph.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from pooling.bridges.base import BridgeError, SessionNotFound, TransientBridgeError
from pooling.bridges.cloud import CloudBridge
from pooling.models import CloudNumber, WhatsAppSession
from tenants.models import Tenant

HOW_TO_GET_A_NUMBER = (
    "prove you own it with POST /api/v1/numbers/claim {\"phone_number_id\": …, \"access_token\": <your Meta "
    "access token>}, or ask the platform operator to assign it to you"
)


class NumberError(Exception):
    code = "number_error"
    http_status = 400


class NumberNotAssigned(NumberError):
    code = "number_not_assigned"
    http_status = 403


class NumberTaken(NumberError):
    code = "number_taken"
    http_status = 409


class NumberInUse(NumberError):
    code = "number_in_use"
    http_status = 409


class TokenRefused(NumberError):
    code = "number_token_refused"
    http_status = 403


class GraphUnavailable(NumberError):
    code = "graph_unavailable"
    http_status = 503


def _clean(phone_number_id: str) -> str:
    phone_number_id = (phone_number_id or "").strip()
    if not phone_number_id or len(phone_number_id) > 64 or any(ch.isspace() for ch in phone_number_id):
        raise NumberError("phone_number_id must be Meta's number id (up to 64 characters, no spaces).")
    return phone_number_id


def holds_number(*, tenant: Tenant, phone_number_id: str) -> bool:
    return CloudNumber.objects.filter(tenant=tenant, phone_number_id=phone_number_id).exists()


def check_number_assigned(*, tenant: Tenant, phone_number_id: str) -> None:
    if not holds_number(tenant=tenant, phone_number_id=phone_number_id):
        raise NumberNotAssigned(f"Cloud number {phone_number_id} is not assigned to this tenant: {HOW_TO_GET_A_NUMBER}.")


@transaction.atomic
def assign_number(*, phone_number_id: str, tenant: Tenant) -> CloudNumber:
    """Staff: give a number of the operator's Meta app to `tenant` (sends use the slot's token).

    Idempotent for the same tenant; a number another tenant holds is refused
    (release it first, which needs that tenant's session stopped).
    """
    phone_number_id = _clean(phone_number_id)
    number = CloudNumber.objects.select_for_update().filter(phone_number_id=phone_number_id).first()
    if number is not None:
        if number.tenant_id != tenant.pk:
            raise NumberTaken(f"Cloud number {phone_number_id} is assigned to tenant {number.tenant.slug}; "
                              "release it first.")
        return number
    try:
        with transaction.atomic():
            return CloudNumber.objects.create(phone_number_id=phone_number_id, tenant=tenant,
                                              source=CloudNumber.Source.STAFF)
    except IntegrityError:
        raise NumberTaken(f"Cloud number {phone_number_id} was just assigned to another tenant.") from None


def claim_number_with_token(*, tenant: Tenant, phone_number_id: str, access_token: str) -> CloudNumber:
    """A tenant proves it owns a number: its token must read the number on Graph.

    The Graph call runs outside any transaction. The token is stored encrypted
    and used for this number's sends and media from then on. Whether another
    tenant holds the number is said only to a caller whose token passed.
    """
    phone_number_id = _clean(phone_number_id)
    if not access_token:
        raise NumberError("access_token is required: the Meta access token that can read this number.")
    if not (access_token.isascii() and access_token.isprintable()) or any(c.isspace() for c in access_token):
        # It goes into an Authorization header: anything else is not a Meta token, and httpx would raise.
        raise NumberError("access_token must be the token as Meta shows it: printable ASCII, no spaces.")
    try:
        with CloudBridge(base_url=settings.CLOUD_API_BASE_URL, api_key=access_token, timeout=10) as graph:
            info = graph.get_session(phone_number_id)
    except SessionNotFound:
        raise TokenRefused(f"Meta does not show number {phone_number_id} to this token: check the number id "
                           "and that the token has whatsapp_business_management on its account.") from None
    except TransientBridgeError as exc:
        raise GraphUnavailable(f"Meta's Graph API did not answer ({exc.reason}); try again shortly.") from None
    except BridgeError as exc:
        raise TokenRefused(f"Meta refused the check of number {phone_number_id}: {exc.reason}") from None
    if info.status != WhatsAppSession.Status.WORKING:
        raise TokenRefused(f"Meta refused this access token for number {phone_number_id}: it is invalid or expired.")
    with transaction.atomic():
        number = CloudNumber.objects.select_for_update().filter(phone_number_id=phone_number_id).first()
        if number is not None and number.tenant_id != tenant.pk:
            raise NumberTaken(f"Cloud number {phone_number_id} is assigned to another tenant; ask the platform "
                              "operator to move it.")
        number = number or CloudNumber(phone_number_id=phone_number_id, tenant=tenant)
        number.source = CloudNumber.Source.TOKEN
        number.access_token = access_token
        number.display_phone_number = str((info.me or {}).get("id", ""))[:32]
        number.save()
    return number


@transaction.atomic
def release_number(*, phone_number_id: str) -> CloudNumber | None:
    """Staff: take a number back. Refused while its tenant's session runs on it."""
    number = CloudNumber.objects.select_for_update().select_related("tenant").filter(
        phone_number_id=phone_number_id).first()
    if number is None:
        return None
    if WhatsAppSession.objects.filter(tenant_id=number.tenant_id, phone_number_id=phone_number_id,
                                      wanted=True).exists():
        raise NumberInUse(f"Tenant {number.tenant.slug} runs a session on {phone_number_id}: stop it first "
                          "(POST /api/v1/session/stop as the tenant).")
    # The stopped session forgets it too, so its next start without a number is not refused for it.
    WhatsAppSession.objects.filter(tenant_id=number.tenant_id, phone_number_id=phone_number_id).update(
        phone_number_id="")
    number.delete()
    return number


def token_for_session(session: WhatsAppSession) -> str:
    """The tenant's own token for its Cloud number, or "" when the slot's shared one applies."""
    if not session.phone_number_id:
        return ""
    return (CloudNumber.objects.filter(phone_number_id=session.phone_number_id, tenant_id=session.tenant_id)
            .values_list("access_token", flat=True).first()) or ""


def session_for_phone_number_id(phone_number_id: str) -> WhatsAppSession | None:
    """The session of the tenant holding the number; None for a number nobody holds.

    Routed by assignment, which is unique: never another tenant's, never a guess.
    """
    if not phone_number_id:
        return None
    return (WhatsAppSession.objects.select_related("tenant")
            .filter(tenant__cloud_numbers__phone_number_id=phone_number_id).first())

"""The bridge adapter for a slot, built from its row and settings."""

from django.conf import settings

# The adapters register their dialects when imported: this is where the platform
# builds bridges, so it is where every dialect must be known.
from pooling.bridges import cloud, waha  # noqa: F401
from pooling.bridges.base import Bridge, get_bridge
from pooling.models import Slot, WhatsAppSession
from pooling.numbers import token_for_session


def bridge_for_slot(slot: Slot, *, timeout: float = 10.0) -> Bridge:
    return get_bridge(slot.dialect, base_url=slot.base_url, api_key=slot.api_key, timeout=timeout)


def bridge_for_session(slot: Slot, session: WhatsAppSession, *, timeout: float = 10.0) -> Bridge:
    """Cloud API numbers are spoken to in the Cloud dialect, also when a sandbox hosts them.

    A number its tenant claimed with its own token is spoken to with that token, never the slot's.
    """
    if session.phone_number_id:
        return get_bridge(
            "cloud",
            base_url=slot.base_url,
            api_key=token_for_session(session) or slot.api_key,
            timeout=timeout,
            sandbox=slot.dialect == Slot.Dialect.SANDBOX,
            phone_number_id=session.phone_number_id,
        )
    return bridge_for_slot(slot, timeout=timeout)


def session_name_on_bridge(session: WhatsAppSession) -> str:
    return session.phone_number_id or session.name


def webhook_url_for(slot: Slot, session: WhatsAppSession) -> str:
    if session.phone_number_id:
        return f"{settings.PUBLIC_BASE_URL}/hooks/cloud/"
    return f"{settings.PUBLIC_BASE_URL}/hooks/waha/{slot.pk}/"


def webhook_secret_for(slot: Slot, session: WhatsAppSession) -> str:
    # Cloud webhooks are signed with the Meta app's secret, one per platform.
    if session.phone_number_id:
        return settings.CLOUD_API_APP_SECRET
    return slot.webhook_secret

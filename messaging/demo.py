"""Demo and sandbox helpers of messaging: never used against a real WhatsApp connection."""

from __future__ import annotations

import httpx

from messaging.services.accept import SendRefused
from pooling.bridging import session_name_on_bridge
from pooling.models import Assignment, Slot, WhatsAppSession
from tenants.models import Tenant


def simulate_inbound(*, tenant: Tenant, sender: str, text: str, name: str = "") -> str:
    """Make the tenant's sandbox worker deliver an inbound message (sandbox slots only).

    Returns the WhatsApp id the sandbox gave it; the message itself arrives
    through the normal signed webhook, like any other.
    """
    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    assignment = Assignment.objects.select_related("slot").filter(tenant=tenant, ended_at__isnull=True).first()
    if session is None or assignment is None:
        raise SendRefused(f"Tenant {tenant.slug} has no running WhatsApp session on a slot.")
    slot = assignment.slot
    if slot.dialect != Slot.Dialect.SANDBOX:
        raise SendRefused(
            f"Tenant {tenant.slug} is on slot {slot} ({slot.dialect}); simulate_inbound only works on sandbox slots, "
            "never on a real WhatsApp connection.")
    response = httpx.post(
        f"{slot.base_url}/sandbox/inbound",
        json={"session": session_name_on_bridge(session), "from": sender, "text": text, "name": name},
        headers={"X-Api-Key": slot.api_key}, timeout=10,
    )
    if response.status_code >= 400:
        raise SendRefused(f"The sandbox worker refused: HTTP {response.status_code} {response.text[:300]}")
    return str(response.json().get("id", ""))

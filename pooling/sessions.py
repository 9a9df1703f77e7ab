"""A tenant's WhatsApp session: start, stop, log out, and its state as the bridge reports it.

State lives on the bridge; the row is our last reading of it. Readings come
from webhooks (instant, can be lost), from GET /api/v1/session (on demand) and
from every health check, so a lost event only delays the truth.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from pooling import allocation
from pooling.bridges.base import BridgeError, QrCode, SessionNotFound
from pooling.bridging import (bridge_for_session, bridge_for_slot, session_name_on_bridge, webhook_secret_for,
                              webhook_url_for)
from pooling.models import Assignment, Slot, WhatsAppSession
from pooling.numbers import NumberInUse, check_number_assigned, holds_number
from tenants.models import Tenant, Tier
from waplatform import alerts
from waplatform.alerts import AlertKind
from waplatform.events import publish_event
from waplatform.queues import enqueue_on_commit

logger = logging.getLogger(__name__)


class SessionError(Exception):
    code = "session_error"


class NoSession(SessionError):
    """The tenant has no running session; sends need one."""

    code = "no_session"

    def __init__(self, message: str = "No WhatsApp session: start one with POST /api/v1/session/start and scan the QR code."):
        super().__init__(message)


class SessionNotReady(SessionError):
    """Transient: the slot is provisioning or down, or the session is not WORKING yet."""

    code = "session_not_ready"


@transaction.atomic
def record_session_status(*, session: WhatsAppSession, status: str, note: str = "", me: dict | None = None,
                          reported_at: datetime | None = None, asked_at: datetime | None = None) -> bool:
    """Store a status reading; publishes `session.status` when it changed. Returns whether it did.

    A stale reading is dropped, so a session cannot fall back from WORKING to
    STARTING because two webhooks crossed, or because the start job recorded its
    call's answer after the webhooks that followed it:
    - `reported_at`, a webhook's time on the bridge's clock: stale when older than
      the last webhook applied (the same clock, so no skew between hosts);
    - `asked_at`, when we asked the bridge (our clock): stale when the status
      changed after that, since whatever changed it knew more.
    """
    locked = WhatsAppSession.objects.select_for_update().get(pk=session.pk)
    if reported_at is not None and locked.status_reported_at is not None and reported_at < locked.status_reported_at:
        return False
    if asked_at is not None and locked.status_changed_at > asked_at and locked.status != status:
        session.status = locked.status
        return False
    changed = locked.status != status
    fields = []
    if reported_at is not None:
        locked.status_reported_at = reported_at
        fields.append("status_reported_at")
    if changed:
        locked.status = status
        locked.status_changed_at = timezone.now()
        fields += ["status", "status_changed_at"]
        if status != WhatsAppSession.Status.SCAN_QR_CODE and locked.qr_value:
            locked.qr_value = ""
            fields.append("qr_value")
    if me is not None and me != locked.me:
        locked.me = me
        fields.append("me")
    if not fields:
        return False
    locked.save(update_fields=fields)
    if changed:
        assignment = allocation.live_assignment(locked.tenant)
        locked.events.create(status=status, slot=assignment.slot if assignment else None, note=note[:255])
        publish_event(
            tenant_id=locked.tenant_id,
            type="session.status",
            data={"session": locked.name, "status": status, "previous": session.status, "note": note},
        )
    session.status = locked.status
    return changed


def schedule_start(*, session_id: int) -> None:

    enqueue_on_commit("pooling.jobs.start_session_on_slot", session_id, queue="maintenance")


@transaction.atomic
def start_session(*, tenant: Tenant, phone_number_id: str = "") -> WhatsAppSession:
    """The tenant wants its session running: place it and start it on its slot (after commit).

    A Cloud number must be one the tenant holds (pooling.numbers), named now or
    kept from an earlier start: NumberNotAssigned otherwise.
    """
    session = allocation.get_or_create_session(tenant)
    session = WhatsAppSession.objects.select_for_update().get(pk=session.pk)
    if phone_number_id or session.phone_number_id:
        check_number_assigned(tenant=tenant, phone_number_id=phone_number_id or session.phone_number_id)
    fields = ["wanted", "last_activity_at", "start_attempts"]
    session.wanted = True
    session.last_activity_at = timezone.now()
    session.start_attempts = 0
    if phone_number_id and phone_number_id != session.phone_number_id:
        if allocation.live_assignment(tenant):
            raise SessionError("Stop the running session before switching it to a Cloud API number.")
        session.phone_number_id = phone_number_id
        fields.append("phone_number_id")
    try:
        with transaction.atomic():
            session.save(update_fields=fields)
    except IntegrityError:
        # one_live_session_per_cloud_number: only reachable if assignment was bypassed.
        raise NumberInUse(f"Cloud number {session.phone_number_id} already has a live session.") from None
    if allocation.place_tenant(tenant=tenant) is not None:
        schedule_start(session_id=session.pk)
    return session


START_BATCH = 100  # sessions per start job: one bridge client for them all, and still a short job


@transaction.atomic
def start_sessions(*, tenants: list[Tenant]) -> int:
    """start_session for many tenants at once (a fleet start, a migration, the capacity bench).

    Sessions are created and marked wanted in bulk, placed by
    allocation.place_many, and started by one job per slot per START_BATCH
    sessions instead of one per session. Cloud numbers, which need their
    number checked, go through start_session. Returns how many were placed.
    """
    cloud = set(WhatsAppSession.objects.filter(tenant__in=tenants).exclude(phone_number_id="")
                .values_list("tenant_id", flat=True))
    for tenant in [t for t in tenants if t.pk in cloud]:
        start_session(tenant=tenant)
    tenants = [t for t in tenants if t.pk not in cloud]
    WhatsAppSession.objects.bulk_create(
        [WhatsAppSession(tenant=t, name=allocation.session_name_for(t)) for t in tenants], ignore_conflicts=True)
    WhatsAppSession.objects.filter(tenant__in=tenants).update(
        wanted=True, last_activity_at=timezone.now(), start_attempts=0)
    placed = allocation.place_many(tenants=tenants)
    for slot_id, session_ids in placed.items():
        for i in range(0, len(session_ids), START_BATCH):
            enqueue_on_commit("pooling.jobs.start_sessions_on_slot", slot_id, session_ids[i:i + START_BATCH],
                              queue="maintenance")
    return sum(len(ids) for ids in placed.values())


def start_many_on_slot(*, slot_id: int, session_ids: list[int]) -> dict[str, int]:
    """Job body: start_on_slot for sessions of one slot over one bridge client. Returns counts by outcome.

    Each session is re-checked as start_on_slot does (still wanted, still
    placed on this slot); a Cloud number, or a slot no longer ready, is left to
    start_on_slot, which knows what to do about it.
    """
    slot = Slot.objects.filter(pk=slot_id).first()
    outcomes: dict[str, int] = {}
    live = set(Assignment.objects.filter(slot_id=slot_id, ended_at__isnull=True, tenant__whatsapp_session__in=session_ids)
               .values_list("tenant__whatsapp_session", flat=True))
    sessions = list(WhatsAppSession.objects.filter(pk__in=session_ids, wanted=True).order_by("pk"))
    here = [s for s in sessions if s.pk in live and not s.phone_number_id]
    if slot is None or slot.state != Slot.State.READY:
        here = []
    for session in [s for s in sessions if s not in here]:
        outcome = start_on_slot(session_id=session.pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if not here:
        return outcomes
    WhatsAppSession.objects.filter(pk__in=[s.pk for s in here]).update(start_attempts=F("start_attempts") + 1)
    with bridge_for_slot(slot) as bridge:
        for session in here:
            asked_at = timezone.now()
            try:
                info = bridge.start_session(
                    session_name_on_bridge(session), webhook_url=webhook_url_for(slot, session),
                    webhook_secret=webhook_secret_for(slot, session),
                    metadata={"tenant.id": str(session.tenant_id), "slot.id": str(slot.pk)})
            except BridgeError as exc:
                WhatsAppSession.objects.filter(pk=session.pk).update(last_error=str(exc)[:500])
                record_session_status(session=session, status=WhatsAppSession.Status.FAILED, note=str(exc))
                outcomes["failed"] = outcomes.get("failed", 0) + 1
                continue
            record_session_status(session=session, status=info.status, note=f"started on {slot}", me=info.me,
                                  asked_at=asked_at)
            outcomes[info.status] = outcomes.get(info.status, 0) + 1
    return outcomes


def _stop(tenant: Tenant, *, logout: bool, reason: str) -> WhatsAppSession | None:
    with transaction.atomic():
        session = WhatsAppSession.objects.select_for_update().filter(tenant=tenant).first()
        if session is None:
            return None
        session.wanted = False
        session.placement = WhatsAppSession.Placement.UNPLACED
        session.waiting_since = None
        session.save(update_fields=["wanted", "placement", "waiting_since"])
        assignment = allocation.release_tenant(tenant=tenant, reason=reason)
        if assignment is not None:

            enqueue_on_commit("pooling.jobs.stop_session_on_slot", session.pk, assignment.slot_id, logout, queue="maintenance")
        record_session_status(session=session, status=WhatsAppSession.Status.STOPPED, note=reason)
    return session


def stop_session(*, tenant: Tenant) -> WhatsAppSession | None:
    return _stop(tenant, logout=False, reason=Assignment.EndReason.STOPPED)


def logout_session(*, tenant: Tenant) -> WhatsAppSession | None:
    return _stop(tenant, logout=True, reason=Assignment.EndReason.STOPPED)


def start_on_slot(*, session_id: int) -> str:
    """Job body: start the session on the bridge of its live assignment. Returns what it did."""
    session = WhatsAppSession.objects.select_related("tenant").filter(pk=session_id).first()
    if session is None or not session.wanted:
        return "not wanted"
    assignment = allocation.live_assignment(session.tenant)
    if assignment is None:
        return "not placed"
    slot = assignment.slot
    if slot.state != Slot.State.READY:
        return f"slot {slot.state}"  # provisioning finishes by starting its sessions
    WhatsAppSession.objects.filter(pk=session.pk).update(start_attempts=session.start_attempts + 1)
    asked_at = timezone.now()
    try:
        with bridge_for_session(slot, session) as bridge:
            info = bridge.start_session(
                session_name_on_bridge(session),
                webhook_url=webhook_url_for(slot, session),
                webhook_secret=webhook_secret_for(slot, session),
                metadata={"tenant.id": str(session.tenant_id), "slot.id": str(slot.pk)},
            )
    except BridgeError as exc:
        WhatsAppSession.objects.filter(pk=session.pk).update(last_error=str(exc)[:500])
        record_session_status(session=session, status=WhatsAppSession.Status.FAILED, note=str(exc))
        return f"failed: {exc}"
    record_session_status(session=session, status=info.status, note=f"started on {slot}", me=info.me,
                          asked_at=asked_at)
    return info.status


def stop_on_slot(*, session_id: int, slot_id: int, logout: bool) -> str:
    session = WhatsAppSession.objects.filter(pk=session_id).first()
    slot = Slot.objects.filter(pk=slot_id).first()
    if session is None or slot is None or slot.state == Slot.State.RETIRED:
        return "nothing to stop"
    try:
        with bridge_for_session(slot, session) as bridge:
            name = session_name_on_bridge(session)
            # Deleting frees the worker's capacity for the next tenant; logout also wipes the login.
            if logout:
                bridge.logout_session(name)
            bridge.delete_session(name)
    except SessionNotFound:
        return "already gone"
    except BridgeError as exc:
        logger.warning("could not stop session %s on %s: %s", session.name, slot, exc)
        return f"failed: {exc}"
    return "stopped"


@dataclass
class SessionView:
    session: WhatsAppSession | None
    slot: Slot | None
    qr: QrCode | None = None
    pairing_code: str = ""
    error: str = ""

    @property
    def qr_data_url(self) -> str:
        if not self.qr:
            return ""
        return "data:image/png;base64," + base64.b64encode(self.qr.png).decode()


def read_session(*, tenant: Tenant, pairing_phone: str = "") -> SessionView:
    """The session as the bridge sees it now (QR included while it waits for a scan)."""
    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    assignment = allocation.live_assignment(tenant)
    view = SessionView(session=session, slot=assignment.slot if assignment else None)
    if session is None or assignment is None or assignment.slot.state != Slot.State.READY:
        return view
    try:
        with bridge_for_session(assignment.slot, session, timeout=5) as bridge:
            name = session_name_on_bridge(session)
            asked_at = timezone.now()
            info = bridge.get_session(name)
            record_session_status(session=session, status=info.status, note="read on demand", me=info.me,
                                  asked_at=asked_at)
            if info.status == WhatsAppSession.Status.SCAN_QR_CODE:
                view.qr = bridge.get_qr(name)
                if view.qr.value != session.qr_value:
                    WhatsAppSession.objects.filter(pk=session.pk).update(qr_value=view.qr.value)
                if pairing_phone:
                    view.pairing_code = bridge.request_pairing_code(name, pairing_phone)
    except SessionNotFound:
        if session.wanted:
            schedule_start(session_id=session.pk)
    except BridgeError as exc:
        view.error = str(exc)
    session.refresh_from_db()
    return view


# Tenants whose activity this process wrote lately (monotonic time): the idle cleanup counts in
# hours, so one write a minute is as good as one per message, and a write is what a busy
# tenant's every send and inbound message queued on (on SQLite, the whole database's lock).
_touched: dict[int, float] = {}
TOUCH_EVERY_SECONDS = 60.0
TOUCHED_KEPT = 20_000


def touch_session_activity(*, tenant: Tenant) -> None:
    now = time.monotonic()
    if now - _touched.get(tenant.pk, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
        return
    WhatsAppSession.objects.filter(tenant=tenant).update(last_activity_at=timezone.now())
    if len(_touched) >= TOUCHED_KEPT:
        _touched.clear()
    _touched[tenant.pk] = now


def has_wanted_session(*, tenant: Tenant) -> bool:
    return WhatsAppSession.objects.filter(tenant=tenant, wanted=True).exists()


@dataclass
class SendingSession:
    bridge: object
    session_name: str
    slot_id: int
    dialect: str


def get_sending_session(*, tenant: Tenant) -> SendingSession:
    """Where the tenant's messages go now. Places the tenant if its session waits for a slot."""
    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    if session is None or not session.wanted:
        raise NoSession()
    assignment = allocation.live_assignment(tenant)
    if assignment is None:
        assignment = allocation.place_tenant(tenant=tenant)
        if assignment is None:
            raise SessionNotReady("The tier's pool is full; the session waits for a slot.")
        schedule_start(session_id=session.pk)
        raise SessionNotReady("The session was just placed on a slot and is starting.")
    slot = assignment.slot
    if slot.state not in (Slot.State.READY, Slot.State.DEGRADED):
        raise SessionNotReady(f"The session's slot is {slot.state}; it will fail over or come up.")
    if session.status != WhatsAppSession.Status.WORKING:
        raise SessionNotReady(f"The WhatsApp session is {session.status}, not WORKING yet.")
    if session.phone_number_id and not holds_number(tenant=tenant, phone_number_id=session.phone_number_id):
        raise NoSession(f"Cloud number {session.phone_number_id} is no longer assigned to this tenant; "
                        "start the session on a number you hold.")
    bridge = bridge_for_session(slot, session)
    return SendingSession(
        bridge=bridge,
        session_name=session_name_on_bridge(session),
        slot_id=slot.pk,
        dialect="cloud" if session.phone_number_id else slot.dialect,
    )


def media_session(*, tenant: Tenant, slot_id: int | None = None, timeout: float = 10.0) -> SendingSession:
    """The bridge that holds (or takes) a tenant's media files: the slot an inbound message came
    through when known (WAHA keeps files on the worker that received them), else the tenant's
    live slot. Unlike get_sending_session, it needs no WORKING session: Graph and a WAHA
    worker's file store answer regardless. Raises NoSession when there is no such slot."""
    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    if session is None:
        raise NoSession()
    slot = Slot.objects.filter(pk=slot_id).first() if slot_id else None
    if slot is None:
        assignment = allocation.live_assignment(tenant)
        if assignment is None:
            raise SessionNotReady("The tenant's session has no slot now; media waits until it has one.")
        slot = assignment.slot
    return SendingSession(bridge=bridge_for_session(slot, session, timeout=timeout), session_name=session_name_on_bridge(session),
                          slot_id=slot.pk, dialect="cloud" if session.phone_number_id else slot.dialect)


def session_for_webhook(*, slot_id: int, session_name: str) -> WhatsAppSession | None:
    """The session a slot's signed webhook speaks for; None unless that tenant was ever on that slot.

    A slot's key signs only its own tenants' events: a compromised worker
    cannot inject messages into a tenant it never hosted.
    """
    return (
        WhatsAppSession.objects.select_related("tenant")
        .filter(name=session_name, tenant__assignments__slot_id=slot_id)
        .distinct()
        .first()
    )


def stuck_starting_before() -> timezone.datetime:
    return timezone.now() - timedelta(seconds=settings.POOL_SESSION_START_TIMEOUT_SECONDS)


def place_waiting_tenants(*, tier_id: int) -> int:
    """Place waiting tenants of a tier, oldest first, while there is room. Returns how many."""
    placed = 0
    waiting = WhatsAppSession.objects.filter(
        placement=WhatsAppSession.Placement.WAITING, tenant__tier_id=tier_id
    ).order_by("waiting_since", "pk")
    for session in waiting.select_related("tenant"):
        if allocation.place_tenant(tenant=session.tenant) is None:
            return placed
        schedule_start(session_id=session.pk)
        placed += 1
    tier = Tier.objects.get(pk=tier_id)
    if not WhatsAppSession.objects.filter(
        placement=WhatsAppSession.Placement.WAITING, tenant__tier_id=tier_id
    ).exists():
        alerts.resolve_alert(kind=AlertKind.POOL_FULL, key=tier.name)
    return placed

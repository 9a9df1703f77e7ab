"""Health checks, failover and provisioning: the pool's 30-second heartbeat.

A slot that fails a check goes degraded, and down after
POOL_HEALTH_FAILURES_BEFORE_DOWN failures in a row; a local worker whose
process is gone is down at once (there is nothing to wait for). A down
slot's tenants are released and placed again on healthy slots of their tier
in the same cycle, and their sessions started there; sends for them wait
(SessionNotReady) instead of failing.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pooling import allocation, hosts, provisioners, sessions
from pooling.bridges.base import BridgeError, SessionInfo
from pooling.bridging import bridge_for_slot
from pooling.models import Assignment, Slot, WhatsAppSession
from waplatform.locks import run_single_flight
from waplatform import alerts
from waplatform.alerts import AlertKind
from waplatform.backoff import backoff_delay
from waplatform.queues import enqueue, enqueue_on_commit
from waplatform.redis import require_redis

logger = logging.getLogger(__name__)

PROCESS_GONE = "process gone"
HOST_GONE = "bridge host gone"
# Provisioning retries wait 5-10 s, then 10-20 s, ... (waplatform.backoff), at most 5 min.
PROVISION_RETRY_BASE_SECONDS = 10
PROVISION_RETRY_CAP_SECONDS = 300
CHECKED_STATES = [Slot.State.READY, Slot.State.DEGRADED, Slot.State.DOWN, Slot.State.DRAINING]


@dataclass
class HealthReport:
    checked: int = 0
    healthy: int = 0
    degraded: list[str] = field(default_factory=list)
    down: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    failed_over: int = 0
    sessions_restarted: int = 0
    provisioning_retried: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"checked {self.checked} slot(s): {self.healthy} healthy"]
        out += [f"slot {name} degraded" for name in self.degraded]
        out += [f"slot {name} DOWN" for name in self.down]
        out += [f"slot {name} recovered" for name in self.recovered]
        if self.failed_over:
            out.append(f"failed over {self.failed_over} tenant(s)")
        if self.sessions_restarted:
            out.append(f"restarted {self.sessions_restarted} session(s)")
        out += [f"provisioning of {name} retried" for name in self.provisioning_retried]
        return out


def _probe(slot: Slot) -> str | None:
    """None when healthy, else why not. Runs outside any transaction (network I/O).

    Called only for slots whose process runs here (pooling.hosts): the pid is looked up here.
    """
    try:
        with bridge_for_slot(slot, timeout=settings.POOL_HEALTH_TIMEOUT_SECONDS) as bridge:
            bridge.ping()
    except BridgeError as exc:
        # Asked after the ping failed, so a process killed a moment ago has had time to go.
        if slot.provisioner == Slot.Provisioner.LOCAL and not provisioners.local_process_alive(slot):
            return PROCESS_GONE
        return str(exc) or type(exc).__name__
    return None


def _set_state(slot: Slot, state: str) -> None:
    slot.state = state
    slot.state_changed_at = timezone.now()


@transaction.atomic
def _apply_probe(slot_id: int, error: str | None, report: HealthReport) -> bool:
    """Record one probe result; returns True when the slot just went down."""
    slot = Slot.objects.select_for_update().get(pk=slot_id)
    slot.last_health_at = timezone.now()
    went_down = False
    if error is None:
        report.healthy += 1
        if slot.state in (Slot.State.DEGRADED, Slot.State.DOWN):
            report.recovered.append(str(slot))
            _set_state(slot, Slot.State.READY)
            alerts.resolve_alert(kind=AlertKind.SLOT_DOWN, key=str(slot.pk))
        slot.consecutive_failures = 0
        slot.last_health_error = ""
    else:
        slot.consecutive_failures += 1
        slot.last_health_error = error[:1000]
        dead = error == PROCESS_GONE or error.startswith(HOST_GONE)
        if slot.state != Slot.State.DOWN and (
            dead or slot.consecutive_failures >= settings.POOL_HEALTH_FAILURES_BEFORE_DOWN
        ):
            if slot.state != Slot.State.DRAINING:
                _set_state(slot, Slot.State.DOWN)
            went_down = True
            report.down.append(str(slot))
            alerts.raise_alert(kind=AlertKind.SLOT_DOWN, key=str(slot.pk), message=f"Slot {slot} is down: {error}")
        elif slot.state == Slot.State.READY:
            _set_state(slot, Slot.State.DEGRADED)
            report.degraded.append(str(slot))
    slot.save()
    return went_down


def fail_over_slot(*, slot_id: int, reason: str = Assignment.EndReason.FAILOVER) -> int:
    """Move every tenant off a slot onto other slots of its tier; returns how many moved."""
    moved = 0
    tenants = [a.tenant for a in Assignment.objects.select_related("tenant").filter(slot_id=slot_id, ended_at__isnull=True)]
    for tenant in tenants:
        with transaction.atomic():
            allocation.release_tenant(tenant=tenant, reason=reason)
            session = WhatsAppSession.objects.filter(tenant=tenant).first()
            if session and session.wanted:
                sessions.record_session_status(
                    session=session, status=WhatsAppSession.Status.STARTING, note=f"{reason} from slot {slot_id}"
                )
                if allocation.place_tenant(tenant=tenant, exclude_slot_ids=[slot_id]) is not None:
                    sessions.schedule_start(session_id=session.pk)
        moved += 1
    return moved


def _reconcile_sessions(slot: Slot, report: HealthReport) -> None:
    """Read each wanted session's state from the bridge, since webhooks can be lost.

    One list call per slot where the dialect has one (WAHA, sandbox): reading
    sessions one by one made a cycle cost ~36 ms per tenant, past the 30 s
    interval at 2,000 tenants (bench `capacity`).
    """
    assignments = list(
        Assignment.objects.select_related("tenant__whatsapp_session").filter(slot=slot, ended_at__isnull=True)
    )
    wanted = [
        a.tenant.whatsapp_session
        for a in assignments
        if getattr(a.tenant, "whatsapp_session", None) is not None and a.tenant.whatsapp_session.wanted
    ]
    if not wanted:
        return
    listed: dict[str, SessionInfo] | None = None
    asked_at = timezone.now()
    if not any(s.phone_number_id for s in wanted):
        try:
            with bridge_for_slot(slot, timeout=settings.POOL_HEALTH_TIMEOUT_SECONDS) as bridge:
                found = bridge.list_sessions()
            listed = None if found is None else {info.name: info for info in found}
        except BridgeError as exc:
            logger.warning("could not list sessions on %s: %s", slot, exc)
            return
    stuck_before = sessions.stuck_starting_before()
    for session in wanted:
        written = listed is None
        if listed is None:
            view = sessions.read_session(tenant=session.tenant)
            lost = bool(view.error)
        else:
            info = listed.get(session.name)
            lost = info is None
            # Only what changed is written: a locked transaction per unchanged session made
            # the cycle minutes long at 10,000 tenants (bench capacity).
            if info is not None and (info.status != session.status or (info.me is not None and info.me != session.me)):
                sessions.record_session_status(session=session, status=info.status, note="health check", me=info.me,
                                               asked_at=asked_at)
                written = True
        if written:
            session.refresh_from_db()
        stuck = session.status == WhatsAppSession.Status.STARTING and session.status_changed_at < stuck_before
        if lost or stuck or session.status in (WhatsAppSession.Status.FAILED, WhatsAppSession.Status.STOPPED):
            sessions.schedule_start(session_id=session.pk)
            report.sessions_restarted += 1


def _retry_stuck_provisioning(report: HealthReport, live: set[str]) -> None:
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.POOL_PROVISION_TIMEOUT_SECONDS * 3)

    for slot in Slot.objects.filter(state=Slot.State.PROVISIONING, state_changed_at__lt=cutoff):
        if slot.host and slot.host not in live:
            # Its job waits on the queue of a host that is gone: place its tenants elsewhere.
            _give_up(slot.pk)
        else:
            enqueue("pooling.jobs.provision_slot", slot.pk, queue=hosts.queue_for(slot))
        report.provisioning_retried.append(str(slot))


def run_health_checks(*, slot_ids: list[int] | None = None, on_host: bool = False) -> HealthReport:
    """One health cycle. The cron cycle (any host) probes registered slots and slots with no
    host, marks the slots of hosts gone silent down, and hands each live host's slots to a job
    on that host's queue (`on_host=True` there), since only that host may look at their pids."""
    report = HealthReport()
    slots = list(Slot.objects.filter(state__in=CHECKED_STATES))
    if provisioners.bridges_stopping():
        # The launcher stops its bridges before its workers: a check in between found every
        # local slot dead, failed its tenants over and provisioned new slots on the way out.
        slots = [s for s in slots if s.provisioner != Slot.Provisioner.LOCAL]
    if slot_ids is not None:
        slots = [s for s in slots if s.pk in slot_ids]
    live: set[str] = set()
    results: list[str | None]
    if on_host:
        slots = [s for s in slots if s.provisioner == Slot.Provisioner.LOCAL and s.host == hosts.this_host()]
    else:
        elsewhere = hosts.hosted_elsewhere(slots)
        live = hosts.live_hosts() if elsewhere or slot_ids is None else set()
        for host, host_slots in elsewhere.items():
            if host in live:
                enqueue("pooling.jobs.run_host_health_checks", [s.pk for s in host_slots],
                        queue=hosts.queue_for(host_slots[0]))
        slots = [s for s in slots if hosts.runs_here(s) or s.host not in live]
    report.checked = len(slots)
    # Probes are network calls: run them side by side so one slow slot does not stretch the cycle.
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda s: _probe(s) if hosts.runs_here(s) else _host_gone(s), slots))
    for slot, error in zip(slots, results):
        if _apply_probe(slot.pk, error, report):
            report.failed_over += fail_over_slot(slot_id=slot.pk)
    for slot in Slot.objects.filter(pk__in=[s.pk for s in slots], state=Slot.State.READY):
        _reconcile_sessions(slot, report)
    if slot_ids is None and not on_host:
        _retry_stuck_provisioning(report, live)
    if slot_ids is None or on_host:
        provisioners.remove_stale_pid_files()  # this host's pid files only
    return report


def _host_gone(slot: Slot) -> str:
    return (f"{HOST_GONE}: {slot.host} not heard from for {settings.BRIDGE_HOST_TTL_SECONDS:.0f} s "
            f"(its bridges role, manage.py run_bridge_agent)")


def provision_slot(*, slot_id: int) -> str:
    """Job body: bring a provisioning slot up, then start the sessions placed on it.

    The health check re-enqueues slots stuck provisioning; without the lock a second job
    could start a second worker process for the same slot while the first still waits for it.
    """
    timeout = settings.POOL_PROVISION_TIMEOUT_SECONDS * 2
    return run_single_flight(
        f"provision slot {slot_id}", lambda: _provision(slot_id), timeout=timeout, skipped="already provisioning"
    )


def _provision(slot_id: int) -> str:
    slot = Slot.objects.filter(pk=slot_id).first()
    if slot is None or slot.state != Slot.State.PROVISIONING:
        return "nothing to do"
    if not hosts.runs_here(slot):
        return f"not for this host: slot {slot} runs on {slot.host}"
    if not slot.host:
        # Placed while no bridges role beat (e.g. before the bridge hosts started): a bridge
        # host that beats now takes it, rather than this host, which may run no bridges role.
        host = hosts.choose_host()
        if host and host != hosts.this_host() and Slot.objects.filter(pk=slot_id, host="").update(host=host):
            slot.host = host
            enqueue("pooling.jobs.provision_slot", slot_id, queue=hosts.queue_for(slot))
            return f"handed to bridge host {host}"
    Slot.objects.filter(pk=slot_id).update(provision_attempts=slot.provision_attempts + 1)
    try:
        base_url, pid, port = provisioners.provision_local_slot(slot)
    except provisioners.ProvisioningError as exc:
        return _provisioning_failed(slot_id, str(exc))
    with transaction.atomic():
        slot = Slot.objects.select_for_update().get(pk=slot_id)
        slot.base_url, slot.pid, slot.port = base_url, pid, port
        slot.host = hosts.this_host()
        _set_state(slot, Slot.State.READY)
        slot.consecutive_failures = 0
        slot.save()
        alerts.resolve_alert(kind=AlertKind.PROVISIONING_FAILED, key=str(slot.tier_id))
        for session_id in WhatsAppSession.objects.filter(
            tenant__assignments__slot=slot, tenant__assignments__ended_at__isnull=True, wanted=True
        ).values_list("pk", flat=True):
            sessions.schedule_start(session_id=session_id)
    return f"ready at {base_url}"


def _provisioning_failed(slot_id: int, error: str) -> str:
    slot = Slot.objects.get(pk=slot_id)
    alerts.raise_alert(
        kind=AlertKind.PROVISIONING_FAILED,
        key=str(slot.tier_id),
        message=f"Could not provision a {slot.tier.name} slot: {error}",
    )
    if slot.provision_attempts + 1 < settings.POOL_PROVISION_MAX_ATTEMPTS:
        # Read after _provision counted this attempt: 1 after the first failure.
        delay = backoff_delay(slot.provision_attempts, base=PROVISION_RETRY_BASE_SECONDS, cap=PROVISION_RETRY_CAP_SECONDS)
        enqueue_on_commit("pooling.jobs.provision_slot", slot_id, queue=hosts.queue_for(slot), delay=delay)
        return f"failed ({error}); retrying in {delay:.0f} s"
    _give_up(slot_id)
    return f"failed ({error}); slot given up"


def _give_up(slot_id: int) -> None:
    """Its tenants go back to the pool (another slot, or waiting), and the slot is retired."""
    with transaction.atomic():
        Slot.objects.filter(pk=slot_id).update(state=Slot.State.DOWN, state_changed_at=timezone.now())
    fail_over_slot(slot_id=slot_id)
    retire_slot(slot_id=slot_id)


def retire_slot(*, slot_id: int) -> bool:
    """Stop an empty slot's worker and mark it retired. Refuses while tenants remain."""
    with transaction.atomic():
        slot = Slot.objects.select_for_update().get(pk=slot_id)
        if slot.state == Slot.State.RETIRED:
            return False
        if Assignment.objects.filter(slot=slot, ended_at__isnull=True).exists():
            return False
        _set_state(slot, Slot.State.RETIRED)
        slot.retired_at = timezone.now()
        slot.save()
        alerts.resolve_alert(kind=AlertKind.SLOT_DOWN, key=str(slot.pk))
    if slot.provisioner == Slot.Provisioner.LOCAL:
        if hosts.runs_here(slot):
            provisioners.stop_local_process(slot)
        else:
            # Waits on the queue of a host that is gone; that host's launcher stops its
            # leftover bridges when it comes back in any case.
            enqueue_on_commit("pooling.jobs.stop_local_bridge", slot.pk, queue=hosts.queue_for(slot))
    return True


def stop_local_bridge(*, slot_id: int) -> str:
    """Job body on the slot's host: stop a retired slot's process."""
    slot = Slot.objects.filter(pk=slot_id).first()
    if slot is None or slot.state != Slot.State.RETIRED or not hosts.runs_here(slot):
        return "nothing to do"
    provisioners.stop_local_process(slot)
    return "stopped"


def drain_slot(*, slot_id: int) -> int:
    """Move every tenant off a slot, then retire it. Returns how many tenants moved."""
    require_redis()
    with transaction.atomic():
        slot = Slot.objects.select_for_update().get(pk=slot_id)
        if slot.state == Slot.State.RETIRED:
            return 0
        _set_state(slot, Slot.State.DRAINING)
        slot.save()
    moved = fail_over_slot(slot_id=slot_id, reason=Assignment.EndReason.DRAINED)
    retire_slot(slot_id=slot_id)
    return moved

"""On start, the platform takes back its own local slots (docs/operations.md, "Restarts").

The launcher stops its sandbox bridge workers with it, but their Slot rows stay:
`ready` in the database with no process behind them. Left alone, the first
health check finds each process gone, marks the slot down, raises `slot_down`,
fails its tenants over and provisions new slots for them: every restart grew
the pool by a set of dead slots and open alerts. Instead, before any worker or
scheduler runs (`manage.py take_back_local_slots`, run by the launcher), each
such slot gets a new process: same slot, same tenants and API key, new pid and
port; its wanted sessions are started again, and its `slot_down` alert resolved.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from pooling import health, provisioners
from pooling.models import Slot
from waplatform import alerts
from waplatform.alerts import AlertKind

# Sandbox workers start in ~1 s each, mostly Python's start-up: side by side, a
# restart with a full pool is not a minute of waiting before the platform runs.
PARALLEL_STARTS = 8


@dataclass
class TakeBackReport:
    taken_back: list[str] = field(default_factory=list)
    still_running: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    stale_pid_files: int = 0

    def lines(self) -> list[str]:
        return ([f"slot {name} taken back" for name in self.taken_back]
                + [f"slot {name} still running" for name in self.still_running]
                + [f"slot {name} retired (it was draining)" for name in self.retired]
                + [f"slot {failure}" for failure in self.failed]
                + [f"{self.stale_pid_files} stale pid file(s) removed"])


def take_back_local_slots() -> TakeBackReport:
    report = TakeBackReport(stale_pid_files=provisioners.remove_stale_pid_files())
    restart: list[Slot] = []
    for slot in Slot.objects.filter(provisioner=Slot.Provisioner.LOCAL).exclude(state=Slot.State.RETIRED).order_by("pk"):
        if provisioners.local_process_alive(slot):
            report.still_running.append(str(slot))
        elif slot.state == Slot.State.DRAINING:
            health.drain_slot(slot_id=slot.pk)  # it was on its way out: finish that, not revive it
            report.retired.append(str(slot))
        else:
            restart.append(slot)
    with ThreadPoolExecutor(max_workers=PARALLEL_STARTS) as pool:
        outcomes = list(pool.map(_restart, restart))
    for slot, outcome in zip(restart, outcomes):
        if outcome is None:
            report.taken_back.append(str(slot))
        else:
            report.failed.append(f"{slot}: {outcome}")
    return report


def _restart(slot: Slot) -> str | None:
    """Start `slot`'s worker again; None when it is ready, else what went wrong."""
    with transaction.atomic():
        # Provisioning, as a new slot: placements may still use it, and if the start fails the
        # usual retries with backoff (pooling.health) take over from here.
        Slot.objects.filter(pk=slot.pk).update(state=Slot.State.PROVISIONING, state_changed_at=timezone.now(),
                                                provision_attempts=0, consecutive_failures=0, pid=None)
    outcome = health.provision_slot(slot_id=slot.pk)
    if not outcome.startswith("ready"):
        return outcome
    alerts.resolve_alert(kind=AlertKind.SLOT_DOWN, key=str(slot.pk))
    return None

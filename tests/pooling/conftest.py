"""Pools run for real here: sandbox worker processes spawned by the local
provisioner, jobs on a real Redis drained by real rq workers (in-process,
burst mode), and a database that really commits (transactional tests), since
everything that leaves the database happens after commit."""

import django_rq
import pytest
from django.test import override_settings

from pooling.models import Slot
from tenants.default_tiers import ensure_default_tiers
from tenants.models import Tier
from waplatform import pidfiles
from tests.bridges.conftest import spawn_sandbox  # noqa: F401  (a fixture shared with the bridge tests)


@pytest.fixture
def pool_env(tmp_path, transactional_db):
    """Local provisioning into a private var dir; every spawned worker is killed afterwards."""
    ensure_default_tiers(Tier)  # a transactional test before this one flushed the migration's rows
    with override_settings(VAR_DIR=tmp_path, SANDBOX_AUTO_SCAN_SECONDS=0.3, POOL_PROVISIONER="local"):
        yield tmp_path
    for pid_file in (tmp_path / "run" / "bridges").glob("*.pid"):
        process = pidfiles.recorded_process(pid_file)
        if process is not None:
            process.kill()


def drain(*queues: str) -> None:
    """Run every job waiting on the queues (and the jobs they enqueue) with real workers."""
    for _ in range(20):
        names = queues or ("maintenance",)
        if not any(django_rq.get_queue(q).count for q in names):
            return
        django_rq.get_worker(*names).work(burst=True)
    raise AssertionError("queues never drained")


def live_slots(tier_name: str):
    return Slot.objects.filter(tier__name=tier_name).exclude(state=Slot.State.RETIRED)

"""One configuration for the launcher and every command, and commands that fail in one line."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pooling import services
from pooling.models import Assignment, Slot
from tests.factories import AssignmentFactory, SlotFactory
from waplatform.dotenv import load_dotenv
from waplatform.embedded_redis import free_port
from waplatform.heartbeat import KEY as HEARTBEAT_KEY
from waplatform.launcher import worker_counts
from waplatform.queues import enqueue
from waplatform.redis import get_redis

REPO = Path(__file__).resolve().parents[2]


def _manage(*args: str, env_file: Path, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run([sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**base, "WAP_ENV_FILE": str(env_file), **env})


def test_a_command_that_cannot_reach_redis_says_so_in_one_line_naming_the_env_port(tmp_path):
    # given a .env that puts Redis on a port where nothing listens
    port = free_port()
    env_file = tmp_path / ".env"
    env_file.write_text(f"EMBEDDED_REDIS_PORT={port}\nWAP_VAR_DIR={tmp_path / 'var'}\n")

    # when a command needs Redis
    done = _manage("rqstats", env_file=env_file)

    # then one line, with the address it read from .env and what to set
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert f"Redis is unreachable at redis://127.0.0.1:{port}/0" in lines[0] and "EMBEDDED_REDIS_PORT" in lines[0]


def test_a_command_that_cannot_reach_the_database_says_so_in_one_line(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"DATABASE_URL=sqlite:///{tmp_path}/missing/dir/db.sqlite3\nWAP_VAR_DIR={tmp_path / 'var'}\n")

    done = _manage("showmigrations", "tenants", env_file=env_file)

    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert "The database is unreachable" in lines[0] and "DATABASE_URL" in lines[0]


def test_the_env_file_fills_what_the_environment_leaves_unset(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("EMBEDDED_REDIS_PORT=6411\nPORT=9999\n")
    monkeypatch.setenv("WAP_ENV_FILE", str(env_file))
    monkeypatch.delenv("EMBEDDED_REDIS_PORT", raising=False)
    monkeypatch.setenv("PORT", "8123")

    load_dotenv()

    assert (os.environ["EMBEDDED_REDIS_PORT"], os.environ["PORT"]) == ("6411", "8123")


@pytest.mark.django_db
def test_drain_slot_refuses_before_touching_the_slot_when_redis_is_unreachable(settings):
    # given a slot with a tenant, and Redis gone
    slot = SlotFactory(used=1, capacity=10)
    assignment = AssignmentFactory(slot=slot)
    settings.REDIS_URL = settings.REDIS_QUEUES_URL = f"redis://127.0.0.1:{free_port()}/0"

    # when it is drained
    with pytest.raises(Exception) as refused:
        services.drain_slot(slot_id=slot.pk)

    # then nothing changed: not DRAINING, the tenant still on it
    assert "connect" in str(refused.value).lower()
    slot.refresh_from_db()
    assert slot.state == Slot.State.READY
    assert Assignment.objects.get(pk=assignment.pk).ended_at is None


@pytest.mark.django_db
def test_simulate_inbound_names_the_from_option_when_it_is_not_a_number(tenant):
    with pytest.raises(CommandError, match=r"--from 'abc' is not a phone number"):
        call_command("simulate_inbound", tenant.slug, "--from", "abc", "--text", "hi")


def test_workers_scale_to_the_cores_keeping_the_seeds_ratios(settings):
    counts = worker_counts(settings.WORKER_COUNTS, min(1.0, 2 / settings.SEED_WORKER_CORES))

    # the seed's 26 workers, and the media queue's 2 (docs/media.md)
    assert sum(settings.WORKER_COUNTS.values()) == 26 + 2
    assert counts == {"high": 2, "medium": 1, "low": 1, "ai": 1, "webhooks": 1, "media": 1, "maintenance": 1}


def test_a_worker_pool_runs_jobs_without_a_line_per_job(tmp_path):
    # given a job waiting on the maintenance queue
    enqueue("waplatform.jobs.heartbeat", queue="maintenance")
    env = {**os.environ, "WAP_ENV_FILE": str(tmp_path / "none.env")}

    # when a worker pool runs it as the launcher starts one
    done = subprocess.run([sys.executable, str(REPO / "manage.py"), "run_worker_pool", "maintenance",
                           "--num-workers", "1", "--burst"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)

    # then the job ran, and the log does not narrate it
    assert done.returncode == 0, done.stderr
    assert get_redis().get(HEARTBEAT_KEY) is not None
    assert "Job OK" not in done.stdout + done.stderr and "heartbeat()" not in done.stdout + done.stderr

"""The multi-host rehearsal in every suite run: `python -m bench cluster --tiny`, in its own process.

It builds PostgreSQL with a streaming replica, Redis with three Sentinels, nginx
and seven launchers, each in a network namespace of its own (on 127.0.0.x where
the machine does not allow namespaces), then performs issue 15's events under
load with a live-inbox WebSocket open through nginx (about 4 minutes here).
Asserted: every event happened and was measured, and what the platform promises
for each holds: no accepted message lost, none sent twice, the standby scheduler
took the lease and no cron cycle was enqueued twice, Sentinel promoted a
replica, /metrics answered with the replica stopped, the socket came back after
the web hosts restarted. Never a timing (these machines are shared); the figures
are printed and written to the results file, and docs/deployment.md quotes them.
"""

import json
import os

import pytest

from tests.bench.runs import run_bench
from tests.deploy.postgres_replica import pg_bin

BENCH_TIMEOUT_SECONDS = 1800  # for a hung run: 221 s measured here, 643 s and 1,273 s under heavy load
EVENTS = [
    "rolling restart of each web host",
    "rolling restart of each worker host",
    "kill -9 the active scheduler",
    "kill -9 the Redis master",
    "kill -9 one web host",
    "PostgreSQL replica stopped",
]
pytestmark = [pytest.mark.integration, pytest.mark.rehearsal, pytest.mark.timeout(BENCH_TIMEOUT_SECONDS + 60)]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    if os.environ.get("DATABASE_URL"):
        # The rehearsal builds PostgreSQL, Redis and nginx of its own whatever the suite runs on:
        # .ci/run's PostgreSQL pass would repeat the SQLite pass's run to the letter.
        pytest.skip("the cluster rehearsal runs in the SQLite pass (it starts a PostgreSQL cluster of its own)")
    if pg_bin() is None:
        pytest.skip("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): apt-get install postgresql")
    if not os.path.exists("/usr/sbin/nginx"):
        pytest.skip("nginx is not installed: apt-get install nginx (`make test-deps` and .ci/run install it)")
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    stdout, leftovers = run_bench(["cluster", "--tiny"], out=out, timeout=BENCH_TIMEOUT_SECONDS, env=env)
    return json.loads(out.read_text())["results"]["cluster"], stdout, leftovers


def test_every_event_happened_under_load_and_was_measured(report):
    result, stdout, _ = report
    events = result["events"]
    for name in EVENTS:
        assert "error" not in events[name], f"{name}: {events[name]['error']}"
        assert events[name]["requests"] > 0, f"no load during {name}"
        assert f"{name}: p99_seconds" in stdout
    assert events["baseline"]["requests_failed"] == 0
    assert events["baseline"]["socket_drops"] == 0


def test_no_accepted_message_was_lost_or_sent_twice_through_any_event(report):
    events = report[0]["events"]
    assert {name: events[name]["messages_lost"] for name in ["baseline", *EVENTS]} == \
        dict.fromkeys(["baseline", *EVENTS], 0)
    assert {name: events[name]["duplicates"] for name in ["baseline", *EVENTS]} == \
        dict.fromkeys(["baseline", *EVENTS], 0)


def test_the_standby_took_over_sentinel_promoted_and_the_replica_was_not_needed(report):
    events = report[0]["events"]
    assert events["kill -9 the active scheduler"]["new_holder"]
    assert events["kill -9 the Redis master"]["new_master_port"] != events["kill -9 the Redis master"]["old_master_port"]
    assert events["PostgreSQL replica stopped"]["metrics_answers_with_replica_stopped"] == [200] * 5
    # Clients that retry with their Idempotency-Key lose nothing to a rolling restart of the web hosts.
    assert events["rolling restart of each web host"]["requests_failed"] == 0


def test_nothing_left_running(report):
    assert report[2] == []


def test_live_inbox_sockets_came_back_after_the_web_hosts_restarted(report):
    events = report[0]["events"]
    restart = events["rolling restart of each web host"]
    assert restart["socket_drops"] >= 1, restart  # the socket's web host went away under it
    assert restart["socket_never_back"] == 0, restart
    # Live updates flowed again after the restarts: echoes arrived on the socket in the later events.
    assert sum(events[name]["socket_message_events"] for name in EVENTS[1:]) > 0, events


def test_no_cron_cycle_ran_twice_across_the_scheduler_takeover(report):
    takeover = report[0]["events"]["kill -9 the active scheduler"]
    assert takeover["cron_jobs_checked"] >= 10, takeover
    assert takeover["cycles_run_twice"] == 0, takeover

"""Every benchmark still runs: `python -m bench --tiny` end to end, in its own process.

Proves that each one produced its figures; none may skip: a benchmark that skips
(the /ws/inbox/ consumer refusing the socket or forwarding nothing, the agents app
not answering) means the feature it measures is broken. Never a timing: these
machines are shared and noisy, and the numbers live in docs/performance.md.
"""

import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from bench.__main__ import BENCHMARKS
from tests.bench.runs import REPO, run_bench

# Every benchmark in tiny mode, one after the other: ~100 s on an idle 2-core machine,
# several times that on a loaded one; the bound is for a hung run, not a slow one.
BENCH_TIMEOUT_SECONDS = 540
pytestmark = pytest.mark.timeout(BENCH_TIMEOUT_SECONDS + 60)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "results.json"
    stdout, leftovers = run_bench(["--tiny"], out=out, timeout=BENCH_TIMEOUT_SECONDS)
    return json.loads(out.read_text()), stdout, leftovers


@pytest.mark.integration
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_produced_figures(report, name):
    results, stdout, _ = report
    result = results["results"][name]
    assert "skipped" not in result, f"{name} skipped: {result['skipped']}"
    assert not result.get("error"), result.get("error")
    numbers = [v for v in result["figures"].values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    assert numbers and all(math.isfinite(v) for v in numbers)
    assert math.isfinite(result["ratio"]["value"]) and result["ratio"]["value"] > 0
    assert f"== {name}" in stdout


@pytest.mark.integration
def test_nothing_left_running(report):
    _, _, leftovers = report
    assert leftovers == []


@pytest.mark.integration
@pytest.mark.skipif(not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
                    reason="needs Debian's PostgreSQL server (apt-get install postgresql)")
def test_the_postgres_pass_runs_the_same_benchmark_on_a_cluster_of_its_own_and_prints_both(tmp_path):
    out = tmp_path / "results.json"
    marker = uuid.uuid4().hex
    completed = subprocess.run([sys.executable, "-m", "bench", "api", "--tiny", "--postgres", "--out", str(out)],
                               cwd=REPO, env={**os.environ, "BENCH_TEST_MARKER": marker},
                               capture_output=True, text=True, timeout=BENCH_TIMEOUT_SECONDS)

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    report = json.loads(out.read_text())
    for results in (report["results"], report["results_postgresql"]):
        assert not results["api"].get("error"), results["api"].get("error")
        assert math.isfinite(results["api"]["ratio"]["value"]) and results["api"]["ratio"]["value"] > 0
    assert "==== SQLite" in completed.stdout and "==== PostgreSQL" in completed.stdout
    # The cluster runs as the postgres user (no marker in its environment): found by its folder.
    leftovers = [p.info["cmdline"] for p in psutil.process_iter(["cmdline", "environ"])
                 if "wap-bench-pg-" in " ".join(p.info["cmdline"] or [])
                 or (p.info["environ"] or {}).get("BENCH_TEST_MARKER") == marker]
    assert leftovers == []

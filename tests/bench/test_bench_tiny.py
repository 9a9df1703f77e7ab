"""Every benchmark still runs: `python -m bench --tiny` end to end, in its own process.

Proves that each one produced its figures; none may skip: a benchmark that skips
(the /ws/inbox/ consumer refusing the socket or forwarding nothing, the agents app
not answering) means the feature it measures is broken. Never a timing: these
machines are shared and noisy, and the numbers live in docs/performance.md.
"""

import json
import math

import pytest

from bench.__main__ import BENCHMARKS
from tests.bench.runs import run_bench

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

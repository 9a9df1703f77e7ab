"""`python -m bench ...` run by a test, in its own process, and what it left running."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]


def run_bench(args: list[str], *, out: Path, timeout: float, env: dict | None = None) -> tuple[str, list]:
    """The run's stdout, and the command lines of its processes still running after it exited."""
    marker = uuid.uuid4().hex  # inherited by everything the bench starts, and by nothing else
    completed = subprocess.run([sys.executable, "-m", "bench", *args, "--out", str(out)], cwd=REPO,
                               env={**(os.environ if env is None else env), "BENCH_TEST_MARKER": marker},
                               capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    leftovers = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("BENCH_TEST_MARKER") == marker:
                leftovers.append(process.cmdline())
        except psutil.Error:
            pass
    return completed.stdout, leftovers

"""python -m bench [name ...] [--tiny] [options]: run benchmarks, print a table, write bench/results.json.

Every figure is a count or a ratio against a baseline measured in the same run:
these machines are shared and noisy. Sizes are modest by default and all
configurable; --tiny runs each benchmark just far enough to prove it works.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import signal
import sys
import time
import traceback
from pathlib import Path

BENCHMARKS = ["queue", "api", "inbound", "agents", "capacity", "pacing"]
# Run only when named: `cluster` builds a whole multi-host deployment (PostgreSQL, Sentinel,
# nginx, seven launchers) and takes minutes even --tiny (tests/bench/test_cluster_tiny.py).
ON_REQUEST = ["cluster"]

# name: (default, tiny)
SIZES = {
    "workers": (2, 1),
    "queue_messages": (1000, 30),
    "profile_messages": (200, 20),
    "api_seconds": (5.0, 1.0),
    "api_concurrency": (8, 2),
    "api_rounds": (2, 1),
    "inbound_samples": (100, 5),
    "agents_parallel": ("1,10,50", "1,3"),
    "agents_rounds": ("10,3,1", "2,1"),
    "capacity_sizes": ("500,1000,2000", "10,20"),
    "capacity_per_sandbox": (250, 10),
    "pacing_messages": (2000, 40),
    "pacing_workers": (2, 2),
    "cluster_clients": (4, 2),
    "cluster_interval": (0.1, 0.2),
    "cluster_event_seconds": (10.0, 3.0),
    "cluster_settle_seconds": (150.0, 90.0),
    "cluster_lease_seconds": (30.0, 6.0),
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}; "
                                                    f"on request only: {', '.join(ON_REQUEST)}")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes: proves each benchmark still works")
    parser.add_argument("--profile", action="store_true", help="queue: also profile the pipeline in-process (pyinstrument)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.json"))
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, databases)")
    for name, (default, _) in SIZES.items():
        parser.add_argument("--" + name.replace("_", "-"), default=None, type=type(default),
                            help=f"default {default}")
    options = parser.parse_args(argv)
    unknown = [n for n in options.names if n not in BENCHMARKS + ON_REQUEST]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS + ON_REQUEST}")
    for name, (default, tiny) in SIZES.items():
        if getattr(options, name) is None:
            setattr(options, name, tiny if options.tiny else default)
    return options


def machine() -> dict:
    import psutil

    return {"nproc": os.cpu_count(), "memory_total_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "memory_available_gb": round(psutil.virtual_memory().available / 2**30, 1),
            "load_average": os.getloadavg(), "python": platform.python_version(), "platform": platform.platform()}


def fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return str(value)


def table(results: dict) -> str:
    lines = []
    for name, result in results.items():
        head = f"== {name}"
        if result.get("skipped"):
            lines.append(f"{head}: skipped: {result['skipped']}")
            continue
        if result.get("error"):
            lines.append(f"{head}: ERROR: {result['error'].strip().splitlines()[-1]}")
            continue
        lines.append(f"{head} ({result['seconds']:.0f} s)")
        for key, value in result.get("figures", {}).items():
            lines.append(f"   {key:<44} {fmt(value)}")
        ratio = result.get("ratio")
        if ratio:
            lines.append(f"   {'RATIO ' + ratio['name']:<44} {fmt(ratio['value'])}")
        for key, value in (result.get("profile") or {}).items():
            if key != "top_statements_per_message":
                lines.append(f"   profile.{key:<36} {fmt(value)}")
    return "\n".join(lines)


def _terminate(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    names = options.names or BENCHMARKS
    signal.signal(signal.SIGTERM, _terminate)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import logging

    from bench.harness import Harness

    logging.getLogger("rq").setLevel(logging.WARNING)  # in-process workers (profiling) would log every job

    results: dict = {}
    harness = Harness(tiny=options.tiny, keep_tmp=options.keep_tmp)
    started = time.time()
    try:
        harness.start()
        for name in names:
            module = importlib.import_module(f"bench.{name}")
            print(f"[bench] {name} ...", flush=True)
            harness.fresh_database()
            harness.reset_redis()
            t0 = time.monotonic()
            try:
                result = module.run(harness, options)
            except KeyboardInterrupt:
                raise
            except Exception:
                result = {"error": traceback.format_exc()}
                sys.stderr.write(f"[bench] {name} failed:\n{result['error']}\n")
                sys.stderr.write(harness.logs_of("") + "\n")
            finally:
                harness.stop_processes()
            result.setdefault("workload", (module.__doc__ or "").strip())
            result["seconds"] = time.monotonic() - t0
            results[name] = result
    finally:
        harness.close()
    report = {"machine": machine(), "tiny": options.tiny, "started_at": started,
              "options": {k: v for k, v in vars(options).items() if k != "names"}, "results": results}
    Path(options.out).write_text(json.dumps(report, indent=2, default=str))
    print(table(results))
    print(f"[bench] results in {options.out}")
    return 1 if any(r.get("error") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

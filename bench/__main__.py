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
# Run only when named: minutes of a platform being hurt (`faults`) or a whole multi-host
# deployment (`cluster`: PostgreSQL, Sentinel, nginx, seven launchers), not speed figures.
ON_REQUEST = ["faults", "cluster"]

# name: (default, tiny)
SIZES = {
    "workers": (2, 1),
    "queue_messages": (1000, 30),
    "profile_messages": (200, 20),
    "api_seconds": (5.0, 1.0),
    "api_concurrency": (8, 2),
    "api_rounds": (2, 1),
    "inbound_samples": (100, 5),
    "agents_parallel": ("1,10,50,100", "1,3"),
    "agents_rounds": ("10,3,1,1", "2,1"),
    "capacity_sizes": ("500,1000,2000", "10,20"),
    "capacity_per_sandbox": (250, 10),
    "pacing_messages": (2000, 40),
    "pacing_workers": (2, 2),
    "fault_sends": (500, 20),
    "fault_worker_kills": (20, 2),
    "fault_burst": (100, 20),
    "fault_web_kills": (2, 1),
    "fault_webhook_down_seconds": (600.0, 5.0),  # issue 14: a receiver down for 10 minutes
    "fault_settle_seconds": (240.0, 240.0),
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
                                                 f"only when named: {', '.join(ON_REQUEST)}")
    parser.add_argument("--tiny", action="store_true", help="smallest sizes: proves each benchmark still works")
    parser.add_argument("--profile", action="store_true", help="queue, api: also profile in-process (pyinstrument)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results.json"))
    parser.add_argument("--faults", default="", help="faults: only these (comma-separated names, default all)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (logs, databases)")
    parser.add_argument("--postgres", action="store_true",
                        help="after SQLite, run the same benchmarks on a throwaway PostgreSQL cluster the bench starts "
                             "(BENCH_DATABASE_URL set: on that database instead) and print both")
    parser.add_argument("--only-database", default=None, help=argparse.SUPPRESS)  # the PostgreSQL pass's child
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

    from bench.harness import platform_python

    return {"nproc": os.cpu_count(), "memory_total_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "memory_available_gb": round(psutil.virtual_memory().available / 2**30, 1),
            "load_average": os.getloadavg(), "python": platform.python_version(), "platform": platform.platform(),
            "platform_processes_python": platform_python()}


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
            if result.get("columns"):
                lines += rows_table(result["rows"], result["columns"])
            continue
        lines.append(f"{head} ({result['seconds']:.0f} s)")
        if result.get("columns"):  # a table of rows (faults, cluster events); others keep rows as data
            lines += rows_table(result["rows"], result["columns"])
            continue
        for key, value in result.get("figures", {}).items():
            lines.append(f"   {key:<44} {fmt(value)}")
        for ratio in [result.get("ratio"), *result.get("ratios", [])]:
            if ratio:
                lines.append(f"   {'RATIO ' + ratio['name']:<44} {fmt(ratio['value'])}")
        for key, value in (result.get("profile") or {}).items():
            if key != "top_statements_per_message":
                lines.append(f"   profile.{key:<36} {fmt(value)}")
    return "\n".join(lines)


def rows_table(rows: list[dict], columns: list[str]) -> list[str]:
    """One line per row (a fault), its main columns, then whatever else it measured."""
    head = ["fault", *columns]
    cells = [[fmt(row.get(c, "")) if row.get(c) is not None else "-" for c in head] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = ["   " + "  ".join(h.ljust(w) for h, w in zip(head, widths))]
    for row, line in zip(rows, cells):
        lines.append("   " + "  ".join(c.ljust(w) for c, w in zip(line, widths)))
        rest = {k: v for k, v in row.items() if k not in head and k != "traceback"}
        if rest:
            lines.append("      " + ", ".join(f"{k} {fmt(v)}" for k, v in rest.items()))
    return lines


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
    # SQLite unless this is the PostgreSQL pass; BENCH_DATABASE_URL no longer replaces SQLite, it adds a pass.
    harness = Harness(tiny=options.tiny, keep_tmp=options.keep_tmp, database_url=options.only_database or "")
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
    if options.only_database:
        report["database"] = "postgresql"
        Path(options.out).write_text(json.dumps(report, indent=2, default=str))
        return 1 if any(r.get("error") for r in results.values()) else 0
    pg_results = None
    if options.postgres or os.environ.get("BENCH_DATABASE_URL"):
        pg_results = postgres_pass(argv if argv is not None else sys.argv[1:], options)
        report["results_postgresql"] = pg_results
    Path(options.out).write_text(json.dumps(report, indent=2, default=str))
    if pg_results is not None:
        print("==== SQLite")
    print(table(results))
    if pg_results is not None:
        print("==== PostgreSQL")
        print(table(pg_results))
        results = {**results, **{f"{k} (postgresql)": v for k, v in pg_results.items()}}
    print(f"[bench] results in {options.out}")
    return 1 if any(r.get("error") for r in results.values()) else 0


def postgres_pass(argv: list[str], options: argparse.Namespace) -> dict:
    """The same benchmarks again in a child process on PostgreSQL (Django reads DATABASES once per process)."""
    import subprocess
    import tempfile
    from contextlib import nullcontext

    from bench.postgres import throwaway_cluster

    given = os.environ.get("BENCH_DATABASE_URL", "")
    args = [a for a in argv if a != "--postgres"]
    with (nullcontext(given) if given else throwaway_cluster()) as url, \
            tempfile.NamedTemporaryFile(suffix=".json") as out:
        print(f"[bench] PostgreSQL pass on {url} ...", flush=True)
        done = subprocess.run([sys.executable, "-m", "bench", *args, "--only-database", url, "--out", out.name],
                              cwd=Path(__file__).resolve().parent.parent)
        try:
            return json.loads(Path(out.name).read_text())["results"]
        except (OSError, ValueError, KeyError):
            return {"postgresql": {"error": f"the PostgreSQL pass exited {done.returncode} without results"}}


if __name__ == "__main__":
    sys.exit(main())

"""Load generator, run as its own process: N concurrent connections for T seconds.

    python -m bench.loadgen URL --method POST --token KEY --json '{...}' --concurrency 8 --seconds 5

Prints one JSON line: requests, errors, statuses, requests_per_s, p50_ms, p99_ms.
The first `--warmup` seconds are run but not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))]


async def main(options: argparse.Namespace) -> dict:
    import httpx

    headers = {"Authorization": f"Bearer {options.token}"} if options.token else {}
    body = json.loads(options.json) if options.json else None
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    start = time.perf_counter()
    count_from = start + options.warmup
    stop = count_from + options.seconds
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:

        async def user() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop:
                try:
                    response = await client.request(options.method, options.url, json=body)
                    code = response.status_code
                except httpx.HTTPError:
                    code = 0
                done = time.perf_counter()
                if now >= count_from:
                    statuses[code] = statuses.get(code, 0) + 1
                    if 200 <= code < 300:
                        latencies.append((done - now) * 1000)
                    else:
                        errors += 1

        await asyncio.gather(*(user() for _ in range(options.concurrency)))
    return {"requests": len(latencies), "errors": errors, "statuses": statuses,
            "requests_per_s": len(latencies) / options.seconds,
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--token", default="")
    parser.add_argument("--json", default="")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
    sys.exit(0)

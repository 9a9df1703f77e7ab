"""Command-line entry of the sandbox worker, shared by `-m` and the Django command."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
from collections.abc import Sequence

from pooling.bridges.sandbox.state import SandboxConfig

DEFAULT_API_KEY = "sandbox"


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--capacity", type=int, required=True, help="sessions (WAHA + Cloud numbers) it accepts")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-key", default=None, help="X-Api-Key it requires (env SANDBOX_API_KEY, default 'sandbox')")
    parser.add_argument("--auto-scan-seconds", type=float, default=None,
                        help="seconds until a QR is 'scanned' (env SANDBOX_AUTO_SCAN_SECONDS, default 3; 0 = never)")
    parser.add_argument("--ack-delay", type=float, default=None, help="seconds between acks (env SANDBOX_ACK_DELAY_SECONDS)")
    parser.add_argument("--echo-delay", type=float, default=None, help="seconds before an echo reply (env SANDBOX_ECHO_DELAY_SECONDS)")


def config_from(options: dict) -> SandboxConfig:
    def pick(key: str, env: str, default: float) -> float:
        return options[key] if options.get(key) is not None else _env_float(env, default)

    if options["capacity"] < 1:
        raise ValueError("--capacity must be at least 1")
    return SandboxConfig(
        capacity=options["capacity"],
        api_key=options.get("api_key") or os.environ.get("SANDBOX_API_KEY") or DEFAULT_API_KEY,
        auto_scan_seconds=pick("auto_scan_seconds", "SANDBOX_AUTO_SCAN_SECONDS", 3.0),
        ack_delay=pick("ack_delay", "SANDBOX_ACK_DELAY_SECONDS", 0.2),
        echo_delay=pick("echo_delay", "SANDBOX_ECHO_DELAY_SECONDS", 1.0),
    )


def check_host(host: str, config: SandboxConfig) -> None:
    # The default key is public knowledge; only loopback may be served with it.
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and config.api_key == DEFAULT_API_KEY:
        raise ValueError(f"refusing to serve {host} with the default API key; set --api-key or SANDBOX_API_KEY")


def serve(host: str, port: int, config: SandboxConfig) -> None:
    import uvicorn

    from pooling.bridges.sandbox.app import create_app

    check_host(host, config)
    # h11 and asyncio only, no websockets, no access log: the smallest footprint uvicorn offers.
    uvicorn.run(create_app(config), host=host, port=port, http="h11", loop="asyncio", ws="none",
                lifespan="on", log_level="warning", access_log=False)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pooling.bridges.sandbox",
                                     description="WA Platform sandbox bridge worker (simulates WhatsApp; not WhatsApp)")
    add_arguments(parser)
    options = vars(parser.parse_args(argv))
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        config = config_from(options)
        check_host(options["host"], config)
    except ValueError as exc:
        parser.error(str(exc))
    serve(options["host"], options["port"], config)

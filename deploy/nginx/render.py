#!/usr/bin/env python3
"""Render the nginx templates beside this file (standard library only).

    python deploy/nginx/render.py --prefix /srv/wap-nginx \\
        --set WEB_UPSTREAMS=127.0.0.1:8001,127.0.0.1:8002 \\
        --set TLS_CERTIFICATE=/etc/ssl/wap.pem --set TLS_CERTIFICATE_KEY=/etc/ssl/wap.key

writes PREFIX/nginx.conf and PREFIX/waplatform.conf (and the logs/ and tmp/
folders nginx needs there); `--out FILE` writes only the
http-context file, for /etc/nginx/conf.d/. A value comes from --set, else
from the environment variable of the same name, else from DEFAULTS; a
placeholder with none of the three is an error, never an empty directive.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# Every default is explained in docs/deployment.md.
DEFAULTS = {
    "WEB_UPSTREAMS": "127.0.0.1:8000",
    "UPSTREAM_MAX_FAILS": "1",
    "UPSTREAM_FAIL_TIMEOUT": "5s",
    "SERVER_NAME": "_",
    "HTTP_LISTEN": "80",
    "HTTPS_LISTEN": "443",
    "REAL_IP_FROM": "",
    "METRICS_ALLOW": "",
    "MAX_BODY_SIZE": "2560k",
    "MEDIA_MAX_BODY_SIZE": "101m",
    "API_RATE_PER_KEY": "60r/s",
    "API_BURST_PER_KEY": "120",
    "API_RATE_PER_ADDRESS": "100r/s",
    "API_BURST_PER_ADDRESS": "200",
    "HOOKS_RATE_PER_ADDRESS": "100r/s",
    "HOOKS_BURST_PER_ADDRESS": "200",
    "WS_CONNECTIONS_PER_ADDRESS": "200",
    "RETRY_AFTER_RATE_LIMITED": "1",
    "RETRY_AFTER_UNAVAILABLE": "5",
    # Only for nginx.conf.template:
    "NGINX_USER": "www-data",
    "WORKER_PROCESSES": "auto",
    "DAEMON": "on",
}

# A value lands inside an nginx directive: these would end it or open a block.
FORBIDDEN = re.compile(r"[;{}'\"\n\r\\]")
CHECKS = {
    "API_RATE_PER_KEY": r"\d+r/[sm]",
    "API_RATE_PER_ADDRESS": r"\d+r/[sm]",
    "HOOKS_RATE_PER_ADDRESS": r"\d+r/[sm]",
    "API_BURST_PER_KEY": r"\d+",
    "API_BURST_PER_ADDRESS": r"\d+",
    "HOOKS_BURST_PER_ADDRESS": r"\d+",
    "WS_CONNECTIONS_PER_ADDRESS": r"\d+",
    "RETRY_AFTER_RATE_LIMITED": r"\d+",
    "RETRY_AFTER_UNAVAILABLE": r"\d+",
    "MAX_BODY_SIZE": r"\d+[kKmM]?",
    "MEDIA_MAX_BODY_SIZE": r"\d+[kKmM]?",
    "DAEMON": r"on|off",
}


class RenderError(ValueError):
    pass


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def derived(values: dict[str, str]) -> dict[str, str]:
    """Placeholders that expand one setting into several directives."""
    servers = _list(values["WEB_UPSTREAMS"])
    if not servers:
        raise RenderError("WEB_UPSTREAMS names no web process (host:port, comma-separated)")
    out = dict(values)
    out["WEB_SERVERS"] = "\n".join(
        f"    server {s} max_fails={values['UPSTREAM_MAX_FAILS']} fail_timeout={values['UPSTREAM_FAIL_TIMEOUT']};"
        for s in servers
    )
    out["REAL_IP_FROM"] = "\n".join(f"    set_real_ip_from {a};" for a in _list(values["REAL_IP_FROM"]))
    out["METRICS_ALLOW"] = "\n".join(f"        allow {a};" for a in _list(values["METRICS_ALLOW"]))
    out["USER_DIRECTIVE"] = f"user {values['NGINX_USER']};" if values.get("NGINX_USER") else ""
    return out


def resolve(overrides: dict[str, str], environ: dict[str, str] | None = None) -> dict[str, str]:
    environ = os.environ if environ is None else environ
    names = set(DEFAULTS) | set(overrides) | {"TLS_CERTIFICATE", "TLS_CERTIFICATE_KEY", "PREFIX"}
    values = {}
    for name in names:
        if name in overrides:
            values[name] = overrides[name]
        elif name in environ:
            values[name] = environ[name]
        elif name in DEFAULTS:
            values[name] = DEFAULTS[name]
    for name, value in values.items():
        if FORBIDDEN.search(value):
            raise RenderError(f"{name}={value!r}: quotes, semicolons, braces and newlines are not allowed")
        if name in CHECKS and not re.fullmatch(CHECKS[name], value):
            raise RenderError(f"{name}={value!r} does not match {CHECKS[name]}")
    return derived(values)


def render(template: str, values: dict[str, str]) -> str:
    missing = sorted({m for m in PLACEHOLDER.findall(template) if m not in values})
    if missing:
        raise RenderError("no value for " + ", ".join(missing) + " (use --set NAME=VALUE or the environment)")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def render_prefix(prefix: Path, values: dict[str, str]) -> None:
    prefix = prefix.resolve()
    values = dict(values, PREFIX=str(prefix))
    site = render((HERE / "waplatform.conf.template").read_text(), values)
    main = render((HERE / "nginx.conf.template").read_text(), values)
    for folder in ("logs", "tmp"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    (prefix / "waplatform.conf").write_text(site)
    (prefix / "nginx.conf").write_text(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--prefix", type=Path, help="write nginx.conf and waplatform.conf here")
    target.add_argument("--out", type=Path, help="write only the http-context file here (for conf.d/)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"--set {item!r}: use NAME=VALUE")
        overrides[name.strip()] = value.strip()
    try:
        values = resolve(overrides)
        if args.prefix:
            render_prefix(args.prefix, values)
            print(f"wrote {args.prefix / 'nginx.conf'} and {args.prefix / 'waplatform.conf'}")
        else:
            args.out.write_text(render((HERE / "waplatform.conf.template").read_text(), values))
            print(f"wrote {args.out}")
    except RenderError as exc:
        print(f"render.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

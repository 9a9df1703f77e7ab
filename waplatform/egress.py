"""Egress policy: every URL the platform calls on a tenant's behalf goes through here.

A tenant controls webhook URLs, LLM base URLs and media links. Left alone, any
of them points our workers at the operator's network (SSRF): 127.0.0.1:6379,
a database, the cloud metadata service at 169.254.169.254. The rule, in one
place (docs/security.md, "Egress"):

- http and https only;
- the host is resolved once, every address it resolves to must be public, and
  the connection goes to that checked address (the URL's host is swapped for
  the IP; the Host header and TLS SNI/certificate check keep the name). A name
  that answers a public address to the check and 127.0.0.1 to the connect
  (DNS rebinding) cannot slip between the two, because there is no second
  lookup;
- every request goes through GuardedTransport, so when a caller follows
  redirects each hop is checked again like the first;
- responses are cut at EGRESS_MAX_RESPONSE_BYTES and EGRESS_TOTAL_TIMEOUT_SECONDS
  (httpx timeouts are per read; a server dripping one byte a second would
  otherwise hold a worker for ever).

EGRESS_ALLOW_PRIVATE_URLS opens the address rule for development (local
receivers on 127.0.0.1); EGRESS_ALLOWED_NETWORKS lets an operator trust a few
internal networks (an LLM gateway on 10.0.0.5) without opening everything.
The operator's own URLs (the platform LLM, ALERT_WEBHOOK_URL, bridges) do not
come through here: the operator trusts them.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud instance metadata services: a credential vending machine for whoever reaches them.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, DigitalOcean, OpenStack
    "169.254.170.2",  # AWS ECS task metadata
    "fd00:ec2::254",  # AWS over IPv6
    "100.100.100.200",  # Alibaba Cloud
    "192.0.0.192",  # Oracle Cloud
))
SETTING_HINT = "set EGRESS_ALLOW_PRIVATE_URLS=true to allow private addresses in development"


class EgressRefused(httpx.RequestError):
    """The policy refused a URL or a response. An httpx.RequestError so callers' `except
    httpx.HTTPError` handles it, but not a TransportError: retrying will not change the answer."""

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message, request=request)


# --- addresses ------------------------------------------------------------------------


def why_not_public(ip: IPAddress) -> str:
    """'' for an address a tenant may reach, else what kind of address it is (for the error)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # ::ffff:127.0.0.1 and 64:ff9b::7f00:1 reach the IPv4 address inside them.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in ipaddress.ip_network("64:ff9b::/96"):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            reason = why_not_public(embedded)
            return f"{reason} (inside the IPv6 address)" if reason else ""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for attribute, name in (("is_unspecified", "an unspecified"), ("is_loopback", "a loopback"),
                            ("is_link_local", "a link-local"), ("is_multicast", "a multicast"),
                            ("is_reserved", "a reserved"), ("is_private", "a private")):
        if getattr(ip, attribute):
            return f"{name} address"
    if not ip.is_global:
        return "a non-public address"  # e.g. 100.64.0.0/10 (carrier-grade NAT)
    return ""


def _operator_allows(ip: IPAddress) -> bool:
    for network in settings.EGRESS_ALLOWED_NETWORKS:
        net = ipaddress.ip_network(network, strict=False)
        if ip.version == net.version and ip in net:
            return True
    return False


def resolve_system(host: str, port: int) -> list[str]:
    """The production resolver (EGRESS_RESOLVER names it by default): the system's getaddrinfo."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _resolver() -> Callable[[str, int], list[str]]:
    return import_string(settings.EGRESS_RESOLVER)


def _split(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise EgressRefused(f"{url!r} has an invalid port.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused("Only absolute http(s) URLs are allowed.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve_checked(host: str, port: int) -> str:
    """Resolve once and return the address to connect to, or refuse with the reason.

    Every address of the name must pass: connecting to "the first public one"
    would let a name with one public and one private record choose per attempt.
    """
    try:
        candidates = [str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))]
        named = False
    except ValueError:
        named = True
        try:
            candidates = _resolver()(host, port)
        except (OSError, UnicodeError) as exc:
            raise EgressRefused(f"The host {host!r} does not resolve ({exc}).") from None
    if not candidates:
        raise EgressRefused(f"The host {host!r} does not resolve.")
    if settings.EGRESS_ALLOW_PRIVATE_URLS:
        return candidates[0]
    for candidate in candidates:
        ip = ipaddress.ip_address(candidate.split("%", 1)[0])
        reason = why_not_public(ip)
        if reason and not _operator_allows(ip):
            what = f"{host!r} resolves to {ip}, {reason}" if named else f"{ip} is {reason}"
            raise EgressRefused(f"{what}; {SETTING_HINT}.")
    return candidates[0]


def check_url(url: str) -> str:
    """Validate a URL a tenant gives us, when it is saved or accepted. Returns it unchanged.

    This is the early, friendly answer (a 400 naming the setting). It is not the
    protection: the address is checked again on every connection (GuardedTransport),
    since DNS may answer differently by then.
    """
    _, host, port = _split(url)
    if settings.EGRESS_ALLOW_PRIVATE_URLS:
        return url  # nothing to refuse, and a name that resolves only later is not our business yet
    resolve_checked(host, port)
    return url


# --- the HTTP client ------------------------------------------------------------------


class _LimitedStream(httpx.SyncByteStream):
    def __init__(self, stream: httpx.SyncByteStream, request: httpx.Request, max_bytes: int, deadline: float):
        self._stream, self._request, self._max_bytes, self._deadline = stream, request, max_bytes, deadline

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in self._stream:
            received += len(chunk)
            if received > self._max_bytes:
                raise EgressRefused(f"The response is larger than {self._max_bytes} bytes (EGRESS_MAX_RESPONSE_BYTES).",
                                    request=self._request)
            if time.monotonic() > self._deadline:
                raise EgressRefused("The response took longer than EGRESS_TOTAL_TIMEOUT_SECONDS.",
                                    request=self._request)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that connects only to checked addresses, pinned for the request."""

    def __init__(self, *, max_response_bytes: int | None = None, total_timeout: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.max_response_bytes = max_response_bytes
        self.total_timeout = total_timeout

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        scheme, host, port = _split(str(request.url))
        try:
            address = resolve_checked(host, port)
        except EgressRefused as exc:
            raise EgressRefused(str(exc), request=request) from None
        # The Host header was set from the name when the request was built and stays;
        # the TLS handshake sends the name as SNI and verifies the certificate against it.
        # A copy: the caller's request keeps its URL, so redirects resolve against the name.
        extensions = {**request.extensions, "sni_hostname": host} if scheme == "https" else request.extensions
        pinned = httpx.Request(request.method, request.url.copy_with(host=address), headers=request.headers,
                               stream=request.stream, extensions=extensions)
        response = super().handle_request(pinned)
        max_bytes = self.max_response_bytes or settings.EGRESS_MAX_RESPONSE_BYTES
        total = self.total_timeout or settings.EGRESS_TOTAL_TIMEOUT_SECONDS
        response.stream = _LimitedStream(response.stream, request, max_bytes, started + total)
        return response


def guarded_client(**kwargs) -> httpx.Client:
    """An httpx.Client for tenant-controlled URLs. Redirects are not followed unless the
    caller asks (follow_redirects=True); followed or not, each hop passes the policy."""
    transport_options = {k: kwargs.pop(k) for k in ("max_response_bytes", "total_timeout") if k in kwargs}
    kwargs.setdefault("follow_redirects", False)
    return httpx.Client(transport=GuardedTransport(**transport_options), **kwargs)

"""API keys resolved once per process; every process forgets them at once when a key, tenant or tier changes.

Without it every API request paid a three-table query (key, tenant, tier) before
any work, a fifth of a GET /api/v1/tenant (docs/performance.md, "API").

Revocation stays immediate through a version stamp: a random token in the
cache Redis (`wap:apikeys:version`). Each request reads it (one GET, beside the
throttle's own round trip); a process whose copies were loaded under another
token drops them all. Any save or delete of an ApiKey, Tenant or Tier writes a
new token after its transaction commits (tenants.apps), so once `revoke_api_key`
or `suspend_tenant` has returned, the next request on any process reads the
database again. A token, not a counter: a Redis that lost its data starts a new
token, never one a process already holds.

Fails closed: with that Redis unreachable nothing is cached and every request
reads the database. API_KEY_CACHE_SECONDS bounds an entry's life should a new
token be lost (Redis down at the moment of the change, or a failover that lost
the last write).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from django.conf import settings

from waplatform.redis import get_cache_redis

logger = logging.getLogger(__name__)

VERSION_KEY = "wap:apikeys:version"
# tenants.models.ApiKey, with its tenant and tier loaded. Not imported: this module only
# copies instances, and importing the models would tie it into their import cycle checks.
ApiKey = Any


@dataclass
class _Entry:
    api_key: ApiKey  # never handed out: each request gets its own copy
    loaded_at: float


_lock = threading.Lock()
_entries: dict[str, _Entry] = {}
_version: str | None = None


def _current_version() -> str | None:
    """The shared token (one is made if Redis has none); None when Redis does not answer."""
    try:
        client = get_cache_redis()
        version = client.get(VERSION_KEY)
        if version is None:
            client.set(VERSION_KEY, uuid.uuid4().hex, nx=True)
            version = client.get(VERSION_KEY)
    except redis.RedisError:
        return None
    return version.decode() if isinstance(version, bytes) else version


def lookup(key_hash: str, load: Callable[[], ApiKey | None]) -> ApiKey | None:
    """The live key with this hash, from this process's copies while the stamp holds, else `load()`.

    Only keys that exist are kept: an unknown key costs a query each time, as
    before (and the per-address failure limit answers guessers).
    """
    global _version
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl <= 0:
        return load()
    version = _current_version()
    now = time.monotonic()
    with _lock:
        if version != _version:
            _entries.clear()
            _version = version
        entry = _entries.get(key_hash) if version is not None else None
        if entry is not None and now - entry.loaded_at < ttl:
            return _copy(entry.api_key)
    # Loaded after the stamp was read: a change committed after this load writes a new
    # stamp after its commit, so the next request sees a token other than `version`.
    api_key = load()
    if api_key is None or version is None:
        return api_key
    with _lock:
        if _version == version:
            if key_hash not in _entries and len(_entries) >= settings.API_KEY_CACHE_SIZE:
                _entries.pop(next(iter(_entries)))  # the oldest; a full cache keeps working
            _entries[key_hash] = _Entry(api_key=_copy(api_key), loaded_at=now)
    return api_key


def touched(key_hash: str, last_used_at: datetime) -> None:
    """The request recorded last_used_at; the kept copy learns it so the next ones skip the write."""
    with _lock:
        entry = _entries.get(key_hash)
        if entry is not None:
            entry.api_key.last_used_at = last_used_at


def forget_here() -> None:
    """Drop this process's copies (its next lookup reads the database, inside its own transaction too)."""
    global _version
    with _lock:
        _entries.clear()
        _version = None


def forget_all() -> None:
    """Drop this process's copies and write a new stamp, so every other process drops its own."""
    forget_here()
    try:
        get_cache_redis().set(VERSION_KEY, uuid.uuid4().hex)
    except redis.RedisError:
        logger.exception("could not renew the API key cache stamp; other processes keep their copies for up to "
                         "API_KEY_CACHE_SECONDS (%s s)", settings.API_KEY_CACHE_SECONDS)


def _copy(api_key: ApiKey) -> ApiKey:
    # A view may change request.auth.tenant in place; the kept copy must not see it.
    tier = copy.copy(api_key.tenant.tier)
    tenant = copy.copy(api_key.tenant)
    tenant.tier = tier
    key = copy.copy(api_key)
    key.tenant = tenant
    return key

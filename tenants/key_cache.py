"""API keys resolved once per process; every process forgets them at once when a key, tenant or tier changes.

Without it every API request paid a three-table query (key, tenant, tier) before
any work, a fifth of a GET /api/v1/tenant (docs/performance.md, "API").

Revocation stays immediate through a version stamp (waplatform/stamped_cache.py,
`wap:apikeys:version`; each request reads it, one GET beside the throttle's own
round trip). Any save or delete of an ApiKey, Tenant or Tier writes a new stamp
after its transaction commits (tenants.apps), so once `revoke_api_key` or
`suspend_tenant` has returned, the next request on any process reads the
database again. Fails closed: with that Redis unreachable nothing is cached.
API_KEY_CACHE_SECONDS bounds an entry's life should a new stamp be lost.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import Any

from waplatform.stamped_cache import StampedCache

VERSION_KEY = "wap:apikeys:version"
# tenants.models.ApiKey, with its tenant and tier loaded. Not imported: this module only
# copies instances, and importing the models would tie it into their import cycle checks.
ApiKey = Any


def _copy(api_key: ApiKey) -> ApiKey:
    # A view may change request.auth.tenant in place; the kept copy must not see it.
    tier = copy.copy(api_key.tenant.tier)
    tenant = copy.copy(api_key.tenant)
    tenant.tier = tier
    key = copy.copy(api_key)
    key.tenant = tenant
    return key


_cache = StampedCache(VERSION_KEY, ttl_setting="API_KEY_CACHE_SECONDS", size_setting="API_KEY_CACHE_SIZE",
                      copy=_copy)


def lookup(key_hash: str, load: Callable[[], ApiKey | None]) -> ApiKey | None:
    """The live key with this hash, from this process's copies while the stamp holds, else `load()`.

    Only keys that exist are kept: an unknown key costs a query each time, as
    before (and the per-address failure limit answers guessers).
    """
    return _cache.get(key_hash, load)


def touched(key_hash: str, last_used_at: datetime) -> None:
    """The request recorded last_used_at; the kept copy learns it so the next ones skip the write."""
    api_key = _cache.kept(key_hash)
    if api_key is not None:
        api_key.last_used_at = last_used_at


forget_here = _cache.forget_here
forget_all = _cache.forget_all
forget_on_commit = _cache.forget_on_commit

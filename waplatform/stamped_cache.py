"""Rows read once per process, dropped by every process at once when the rows change.

A version stamp: a random token in the cache Redis under the cache's own key.
Each lookup reads it (one GET); a process whose copies were loaded under another
token drops them all. The owner of the rows calls `forget_all()` after any change
commits, which writes a new token, so once the change has returned, the next
lookup on any process reads the database again. A token, not a counter: a Redis
that lost its data starts a new token, never one a process already holds.

Fails closed: with that Redis unreachable nothing is cached and every lookup
reads the database. The time-to-live bounds an entry's life should a new token
be lost (Redis down at the moment of the change, a failover that lost the write).

Users: API keys (tenants/key_cache.py), tenants' webhook endpoints
(messaging/webhooks_out.py).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import transaction

from waplatform.redis import get_cache_redis

logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    value: Any
    loaded_at: float


class StampedCache:
    """`ttl_setting` / `size_setting`: names of settings, read at each call (tests change them).
    `copy`: how a kept value is handed out, for values a caller may change in place."""

    def __init__(self, version_key: str, *, ttl_setting: str, size_setting: str,
                 copy: Callable[[Any], Any] = lambda value: value):
        self.version_key = version_key
        self.ttl_setting = ttl_setting
        self.size_setting = size_setting
        self.copy = copy
        self._lock = threading.Lock()
        self._entries: dict[Any, _Entry] = {}
        self._version: str | None = None

    def _current_version(self) -> str | None:
        """The shared token (one is made if Redis has none); None when Redis does not answer."""
        try:
            client = get_cache_redis()
            version = client.get(self.version_key)
            if version is None:
                client.set(self.version_key, uuid.uuid4().hex, nx=True)
                version = client.get(self.version_key)
        except redis.RedisError:
            return None
        return version.decode() if isinstance(version, bytes) else version

    def get(self, key: Any, load: Callable[[], Any]) -> Any:
        """The value for `key` from this process's copies while the stamp holds, else `load()`.
        None is never kept: what does not exist is read again each time."""
        ttl = getattr(settings, self.ttl_setting)
        if ttl <= 0:
            return load()
        version = self._current_version()
        now = time.monotonic()
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
            entry = self._entries.get(key) if version is not None else None
            if entry is not None and now - entry.loaded_at < ttl:
                return self.copy(entry.value)
        # Loaded after the stamp was read: a change committed after this load writes a new
        # stamp after its commit, so the next lookup sees a token other than `version`.
        value = load()
        if value is None or version is None:
            return value
        with self._lock:
            if self._version == version:
                if key not in self._entries and len(self._entries) >= getattr(settings, self.size_setting):
                    self._entries.pop(next(iter(self._entries)))  # the oldest; a full cache keeps working
                self._entries[key] = _Entry(value=self.copy(value), loaded_at=now)
        return value

    def kept(self, key: Any) -> Any:
        """This process's own copy (not a copy of it), or None: for a caller that must update it in place."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.value if entry is not None else None

    def forget_here(self) -> None:
        """Drop this process's copies (its next lookup reads the database, inside its own transaction too)."""
        with self._lock:
            self._entries.clear()
            self._version = None

    def forget_on_commit(self) -> None:
        """For a change inside a transaction: this process forgets now (its own later reads in the
        transaction see the change), every process once it commits (others cannot see it before)."""
        self.forget_here()
        transaction.on_commit(self.forget_all)

    def forget_all(self) -> None:
        """Drop this process's copies and write a new stamp, so every other process drops its own."""
        self.forget_here()
        try:
            get_cache_redis().set(self.version_key, uuid.uuid4().hex)
        except redis.RedisError:
            logger.exception("could not renew the cache stamp %s; other processes keep their copies for up to "
                             "%s (%s s)", self.version_key, self.ttl_setting, getattr(settings, self.ttl_setting))

"""The two caches agents keep (docs/agents.md, "Caches").

Compiled triggers, per tenant: in process and in Redis, both under a version
stamp kept in Redis. A change to any trigger or agent of the tenant replaces
the stamp (after commit), so every process misses on its next message and
reloads; nothing has to be told to forget. The stamp is a random token, not a
counter, so an emptied Redis cannot bring an old stamp back to life.

AI responses, per conversation: keyed by agent id and version and the
normalised text being answered. Per conversation on purpose: an answer built
from one contact's words is never served to another. A switch clears the
conversation's entries (an index set lists them, so no SCAN is needed).

Knowledge-base indexes, per agent and version: in process only. Every change
to an agent's entries bumps its version (agents.services.definitions), and the
responding job reads the agent row afresh, so a new version is a miss and an
old index is never asked for again; the bounded map drops it in time.

Redis trouble never stops an answer: both caches fall back to doing the work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
from collections import OrderedDict
from typing import Callable

from django.conf import settings
from redis.exceptions import RedisError

from agents.responders.knowledge_base import Entry, Index
from agents.triggers import CompiledTriggers, normalise_words
from waplatform import counters
from waplatform.redis import get_cache_redis

logger = logging.getLogger(__name__)

# tenant id → (stamp, compiled); one worker process serves many tenants.
_local_triggers: dict[int, tuple[str, CompiledTriggers]] = {}


def _stamp_key(tenant_id: int) -> str:
    return f"agents:trigger-stamp:{tenant_id}"


def trigger_stamp(tenant_id: int) -> str:
    redis = get_cache_redis()
    stamp = redis.get(_stamp_key(tenant_id))
    if stamp is None:
        redis.set(_stamp_key(tenant_id), secrets.token_hex(8), nx=True)
        stamp = redis.get(_stamp_key(tenant_id))
    return stamp.decode() if isinstance(stamp, bytes) else str(stamp)


def compiled_triggers(tenant_id: int, load_specs: Callable[[], dict]) -> CompiledTriggers:
    """The tenant's compiled triggers, from process memory, Redis or (last) the database.

    The stamp is read before the database, so specs loaded just before a
    change commits are stored under the old stamp, which nobody asks for again.
    """
    try:
        stamp = trigger_stamp(tenant_id)
    except RedisError:
        logger.warning("redis unavailable: loading triggers of tenant %s from the database", tenant_id)
        return CompiledTriggers.from_specs(load_specs())
    local = _local_triggers.get(tenant_id)
    if local is not None and local[0] == stamp:
        counters.incr("cache_lookups", cache="triggers", result="hit")
        return local[1]
    key = f"agents:triggers:{tenant_id}:{stamp}"
    raw = get_cache_redis().get(key)
    counters.incr("cache_lookups", cache="triggers", result="hit" if raw is not None else "miss")
    if raw is not None:
        specs = json.loads(raw)
    else:
        specs = load_specs()
        get_cache_redis().set(key, json.dumps(specs), ex=settings.AGENTS_TRIGGER_CACHE_SECONDS)
    compiled = CompiledTriggers.from_specs(specs)
    _local_triggers[tenant_id] = (stamp, compiled)
    return compiled


def invalidate_triggers(tenant_id: int) -> None:
    """Call after commit (agents.services does, through on_commit)."""
    try:
        get_cache_redis().set(_stamp_key(tenant_id), secrets.token_hex(8))
    except RedisError:
        # Without a new stamp other processes keep the old triggers until Redis is back
        # and the key expires; drop ours at least.
        logger.exception("could not invalidate the trigger cache of tenant %s", tenant_id)
        _local_triggers.pop(tenant_id, None)


# --- knowledge-base indexes -------------------------------------------------------

KNOWLEDGE_INDEXES_KEPT = 256
_knowledge_indexes: OrderedDict[tuple, Index] = OrderedDict()
_knowledge_lock = threading.Lock()


def knowledge_index(*, agent_id: int, version: int, created_at: object,
                    load_entries: Callable[[], list[Entry]]) -> Index:
    """The agent's compiled knowledge base at `version`, built from `load_entries()` on a miss.

    `created_at` tells apart two agents given the same id, where a database was emptied (tests)."""
    key = (agent_id, created_at, version)
    with _knowledge_lock:
        index = _knowledge_indexes.get(key)
        if index is not None:
            _knowledge_indexes.move_to_end(key)
    counters.incr("cache_lookups", cache="knowledge_index", result="hit" if index is not None else "miss")
    if index is not None:
        return index
    index = Index(load_entries())
    with _knowledge_lock:
        _knowledge_indexes[key] = index
        while len(_knowledge_indexes) > KNOWLEDGE_INDEXES_KEPT:
            _knowledge_indexes.popitem(last=False)
    return index


# --- AI responses -----------------------------------------------------------------


def context_fingerprint(texts: list[str]) -> str:
    normalised = "\n".join(normalise_words(t) for t in texts)
    return hashlib.sha256(normalised.encode()).hexdigest()[:32]


def _response_key(conversation_id: int, agent_id: int, version: int, fingerprint: str) -> str:
    return f"agents:resp:{conversation_id}:{agent_id}:v{version}:{fingerprint}"


def _index_key(conversation_id: int) -> str:
    return f"agents:resp-index:{conversation_id}"


def cached_response(*, conversation_id: int, agent_id: int, version: int, fingerprint: str) -> dict | None:
    try:
        raw = get_cache_redis().get(_response_key(conversation_id, agent_id, version, fingerprint))
    except RedisError:
        return None
    counters.incr("cache_lookups", cache="ai_responses", result="hit" if raw else "miss")
    return json.loads(raw) if raw else None


def store_response(*, conversation_id: int, agent_id: int, version: int, fingerprint: str, response: dict) -> None:
    key = _response_key(conversation_id, agent_id, version, fingerprint)
    ttl = settings.AGENTS_RESPONSE_CACHE_SECONDS
    try:
        pipe = get_cache_redis().pipeline()
        pipe.set(key, json.dumps(response), ex=ttl)
        pipe.sadd(_index_key(conversation_id), key)
        pipe.expire(_index_key(conversation_id), ttl)
        pipe.execute()
    except RedisError:
        logger.warning("could not cache the response for conversation %s", conversation_id)


def clear_conversation_responses(conversation_id: int) -> int:
    """Forget every cached response of one conversation. Call after commit."""
    try:
        redis = get_cache_redis()
        keys = list(redis.smembers(_index_key(conversation_id)))
        if keys:
            redis.delete(*keys)
        redis.delete(_index_key(conversation_id))
        return len(keys)
    except RedisError:
        # Entries expire on their own; the new agent's key differs anyway (agent id is in it).
        logger.exception("could not clear cached responses of conversation %s", conversation_id)
        return 0

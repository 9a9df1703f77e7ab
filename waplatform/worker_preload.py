"""Libraries a pool's workers import on their first job, imported by the pool's parent instead.

A worker imports some libraries only when a job first needs them (the bridges' HTTP
transport, the live inbox's Redis pub/sub, the knowledge base's ranking with numpy),
so that the processes that never need them stay small. In a pool that made the first
job of every worker process slow: `bench agents` at one conversation measured the
first reply of each fresh `ai` worker at 520-640 ms against 140-270 ms for the next
ones, ~150 of its ~280 job samples importing numpy (py-spy; docs/performance.md).
Imported in the parent before the fork, they cost that once per pool, and every
worker shares the pages instead of each loading its own copy.

The same holds for what a first job builds and then keeps for the process: the bridges'
TLS context (loading the CA bundle, ~300 ms of a `low` worker's first batch under
py-spy) is built once in the parent and inherited.

WORKER_PRELOAD_MODULES maps a queue name (or "*" for every pool) to module names, or to
"module:function" for a function to call (with no arguments) once the module is imported.
"""

from __future__ import annotations

import importlib
import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def modules_for(queues: list[str]) -> list[str]:
    wanted = settings.WORKER_PRELOAD_MODULES
    names = list(wanted.get("*", []))
    for queue in queues:
        names += [name for name in wanted.get(queue, []) if name not in names]
    return names


def preload_for(queues: list[str]) -> list[str]:
    """Import what the pool for `queues` will need; returns the names imported. A module that
    cannot be imported is skipped with a warning; a function that raises stops the pool's start."""
    imported = []
    for name in modules_for(queues):
        module_name, _, function = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # Not fatal: a deployment without an optional library (the knowledge base's) still runs.
            logger.warning("worker preload: %s could not be imported (%s); skipped", module_name, exc)
            continue
        if function:
            getattr(module, function)()
        imported.append(name)
    return imported

"""Objects made while a process starts are never garbage: keep the collector off them.

A Django process holds several hundred thousand objects once its apps, URLconf and
libraries are loaded, all alive until it exits. Python's full (generation 2)
collection scans every one of them each time it runs, and it runs when enough new
long-lived objects pile up: a stall in the middle of a request. Measured in daphne
(`bench inbound`, docs/performance.md): one inbound message in a hundred took 170–185
ms instead of ~35, the collection itself. `gc.freeze()` moves everything alive to a
permanent generation the collector skips; what requests create is still collected.

It helps forked workers too: a collection writes to every object it scans (its GC
header), so a pool's child that collects copies the parent's pages it shares; frozen
objects stay shared (https://docs.python.org/3/library/gc.html#gc.freeze).
"""

import gc


def freeze_startup_objects() -> None:
    """Call once start-up is done (and in a pool's parent, before it forks its workers)."""
    gc.collect()  # what start-up already dropped is freed, not frozen
    gc.freeze()

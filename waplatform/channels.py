"""Sending to Channels groups from sync code (jobs, sync views, event subscribers).

`async_to_sync(layer.group_send)` builds an event loop per call, and the
Redis channel layers keep their connection per loop, so every event opened a
new Redis connection (17% of a send in bench `queue`). One long-lived loop
thread per process keeps one.
"""

import asyncio
import os
import threading

from channels.layers import get_channel_layer

SEND_TIMEOUT_SECONDS = 10
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_lock = threading.Lock()


def _broadcast_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _lock:
        # After a fork the thread running the parent's loop is gone: start anew.
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="channels-broadcast", daemon=True).start()
    return _loop


def group_send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        # Inside async code blocking would stall its loop: hand the send to that loop.
        running.create_task(layer.group_send(group, message))
        return
    future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _broadcast_loop())
    future.result(timeout=SEND_TIMEOUT_SECONDS)

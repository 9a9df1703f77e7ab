"""Waiting on a condition instead of sleeping for a guessed time.

`wait_until` polls a condition until it holds and returns its value; on a timeout
it fails the test saying what it waited for and the condition's last value. A
sleep either waits too long (slow suite) or too short (flaky suite on a busy
machine); a wait on the condition does neither.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from asgiref.sync import sync_to_async

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05,
               message: str = "condition", step: Callable[[], object] | None = None) -> T:
    """Call `condition` until it returns something truthy, and return that.

    `step`, when given, runs before each check: the work that makes the condition
    come true (running queued jobs, handing over received webhooks). The condition
    is always checked at least once, and once more after the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        if step is not None:
            step()
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {message}; last value: {value!r}")
        time.sleep(interval)


async def async_wait_until(condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.05,
                           message: str = "condition") -> T:
    """`wait_until` for async tests: the (synchronous, e.g. ORM) condition runs in a thread."""
    check: Callable[[], Awaitable[T]] = sync_to_async(condition)
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {message}; last value: {value!r}")
        await asyncio.sleep(interval)


def hold_for(seconds: float, step: Callable[[], object], *, interval: float = 0.1) -> None:
    """Keep running `step` for `seconds`: the window in which something must NOT happen.

    Not a wait for a condition: a test that proves an absence (no second reply, no
    duplicate) has to give the unwanted thing its chance to occur.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        step()
        time.sleep(interval)
    step()

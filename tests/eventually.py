"""Bounded waiting for eventual effects (workers run in the background)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], seconds: float = 20.0, interval: float = 0.05,
                     what: str = "condition") -> T:  # fmt: skip
    """Poll `check` until it returns a truthy value or `seconds` pass (then fail, saying what)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds}s (last value: {value!r})")
        await asyncio.sleep(interval)

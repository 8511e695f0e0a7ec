"""What in-process tests share: the ``run`` fixture's type (tests/conftest.py) and ``until``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

Run = Callable[[Coroutine[Any, Any, Any]], Any]


async def until(done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for *done* (a bound on a hang, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.01)

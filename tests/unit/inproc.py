"""ipyvirt's runtime started in process on a fresh loop, for tests that import it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import libvirt
import pytest

import ipyvirt

Run = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(name="run")
def run_fixture(libvirt_loop: asyncio.AbstractEventLoop) -> Iterator[Run]:
    """Runs a coroutine on a loop that ipyvirt's runtime serves (stopped afterwards)."""
    libvirt.registerErrorHandler(lambda *a: None, None)
    ipyvirt.start(libvirt_loop)
    yield libvirt_loop.run_until_complete
    ipyvirt.stop()


async def until(done: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for *done* (a bound on a hang, not a speed check)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not done():
        if loop.time() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        await asyncio.sleep(0.01)

"""Implementation factories for the conformance kit: ``module:callable`` names for the CLI."""

from __future__ import annotations

import asyncio

from ipyvirt.asyncio_impl import AsyncioEventImpl

__all__ = ["split"]


def split(loop: asyncio.AbstractEventLoop) -> AsyncioEventImpl:
    """ipyvirt as a kernel runs it: timers on *loop*, fd watches on a HandleThread.

    ``python -m ipyvirt.testing ipyvirt.testing.factories:split``
    """
    impl = AsyncioEventImpl(loop)
    impl.bind(loop, handle_loop=impl.handle_thread("kit-io"))
    return impl

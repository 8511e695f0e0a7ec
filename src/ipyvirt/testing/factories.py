"""Implementation factories for the conformance kit: ``module:callable`` names for the CLI.

``ipyvirt:AsyncioEventImpl`` itself is the default mode (fd watches on an io thread of its
own); these name the other ways to run it.
"""

from __future__ import annotations

import asyncio

from ipyvirt.asyncio_impl import AsyncioEventImpl

__all__ = ["one_loop", "split"]


def split(loop: asyncio.AbstractEventLoop) -> AsyncioEventImpl:
    """ipyvirt as a kernel runs it: timers on *loop*, fd watches on an io thread named
    ``kit-io`` (the default, with another thread name).

    ``python -m ipyvirt.testing ipyvirt.testing.factories:split``
    """
    impl = AsyncioEventImpl(loop, io_loop=loop)
    impl.bind(loop, io_loop=impl.io_thread("kit-io"))
    return impl


def one_loop(loop: asyncio.AbstractEventLoop) -> AsyncioEventImpl:
    """One-loop mode: timers and fd watches on *loop*, no thread.

    ``python -m ipyvirt.testing ipyvirt.testing.factories:one_loop``
    """
    return AsyncioEventImpl(loop, io_loop=loop)

"""libvirt's events for ``async for`` and ``await``, usable with top-level await in a cell.

    async for event in ipyvirt.events(conn, families=["domain"]):
        print(event)

    await ipyvirt.wait_for(dom, "running", timeout=30)

Leaving the loop, cancelling the task or closing the iterator cancels the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator

import libvirt

from ipyvirt.connection import Connection
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import Event
from ipyvirt.names import DOMAIN_STATES, state_name

__all__ = ["events", "wait_for"]

_STATES = DOMAIN_STATES

#: the Connections events() and wait_for() opened and have not closed yet
active: set[Connection] = set()


@contextlib.contextmanager
def _watching(conn: Connection | libvirt.virConnect) -> Iterator[Connection]:
    """*conn* itself, or a Connection watching it for as long as the caller needs one."""
    if isinstance(conn, Connection):
        yield conn
        return
    watcher = Connection(conn, history=0)
    active.add(watcher)
    try:
        yield watcher
    finally:
        watcher.close()
        active.discard(watcher)


async def events(
    conn: Connection | libvirt.virConnect,
    *,
    families: Iterable[str] | None = None,
    kinds: Iterable[str] | None = None,
    subject: str | None = None,
    maxsize: int = 10_000,
) -> AsyncIterator[Event]:
    """Yield *conn*'s events as they arrive (filters as in :meth:`Connection.subscribe`).

    Events that arrive while the consumer is busy wait in a queue of *maxsize*; past that the
    oldest are dropped and :class:`IpyvirtError` is raised at the consumer, so a slow
    consumer learns it missed some instead of reading a silently thinned stream.
    """
    with _watching(conn) as watcher:
        # closed with this generator, not left to the garbage collector: a consumer that
        # leaves the loop early must cancel the subscription now, on a loop still running
        async with contextlib.aclosing(_stream(watcher, families, kinds, subject, maxsize)) as s:
            async for event in s:
                yield event


async def _stream(
    watcher: Connection,
    families: Iterable[str] | None,
    kinds: Iterable[str] | None,
    subject: str | None,
    maxsize: int,
) -> AsyncGenerator[Event, None]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event] = asyncio.Queue()
    overflow: list[int] = []

    def put(event: Event) -> None:  # on ipyvirt's main loop; maybe not the consumer's
        def deliver() -> None:
            if queue.qsize() >= maxsize:
                overflow.append(1)
                queue.get_nowait()
            queue.put_nowait(event)

        if asyncio.get_running_loop() is loop:
            deliver()
        else:
            loop.call_soon_threadsafe(deliver)

    sub = watcher.subscribe(put, families=families, kinds=kinds, subject=subject)
    try:
        while True:
            event = await queue.get()
            if overflow:
                raise IpyvirtError(
                    f"{len(overflow)} events were dropped: the consumer of ipyvirt.events() "
                    f"fell more than {maxsize} behind; read faster or raise maxsize."
                )
            yield event
    finally:
        sub.cancel()


async def wait_for(dom: libvirt.virDomain, state: str, *, timeout: float | None = None) -> None:
    """Return once *dom* is in *state* ("running", "paused", "shutoff", ...), at once if it
    is already. Raises :class:`TimeoutError` naming the state it is in after *timeout* s."""
    if state not in _STATES:
        raise ValueError(f"unknown domain state {state!r}: use one of {', '.join(_STATES)}")

    def current() -> str:
        return state_name(dom.state()[0])

    if current() == state:
        return
    reached = asyncio.Event()
    loop = asyncio.get_running_loop()

    def check(event: Event) -> None:
        if event.subject == dom.name() and current() == state:
            loop.call_soon_threadsafe(reached.set)

    with _watching(dom.connect()) as watcher:
        sub = watcher.subscribe(check, families=["domain"], kinds=["lifecycle"], subject=dom.name())
        try:
            if current() == state:  # it changed before we subscribed
                return
            await asyncio.wait_for(reached.wait(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(
                f"domain {dom.name()} is {current()}, not {state}, after {timeout} s"
            ) from None
        finally:
            sub.cancel()

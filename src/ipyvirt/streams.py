"""libvirt's events for ``async for`` and ``await``, usable with top-level await in a cell.

    async for event in ipyvirt.events(conn, families=["domain"]):
        print(event)

    await ipyvirt.wait_for(dom, "running", timeout=30)

Leaving the loop, cancelling the task or closing the iterator cancels the subscription.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable

import libvirt

from ipyvirt.connection import Connection
from ipyvirt.domains import STATE_ORDER
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import Event
from ipyvirt.names import state_name

__all__ = ["events", "wait_for"]

_STATES = (*STATE_ORDER, "nostate")

# libvirt connections ipyvirt watches for wait_for(), by the id of the virConnect
_watchers: dict[int, tuple[libvirt.virConnect, Connection]] = {}
_watchers_lock = threading.Lock()


def _watcher(conn: libvirt.virConnect) -> Connection:
    """The ipyvirt Connection watching *conn*, made on first use, kept for reuse."""
    with _watchers_lock:
        known = _watchers.get(id(conn))
        if known is None or known[0] is not conn:
            known = (conn, Connection(conn, history=0))
            _watchers[id(conn)] = known
        return known[1]


def close_watchers() -> None:
    """Close the connections :func:`wait_for` opened (``%unload_ext ipyvirt`` does)."""
    with _watchers_lock:
        for _, watcher in _watchers.values():
            watcher.close()
        _watchers.clear()


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
    watcher = conn if isinstance(conn, Connection) else _watcher(conn)
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

    watcher = _watcher(dom.connect())
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

"""A conformance kit for libvirt event loop implementations.

Run every clause of the contract against any :class:`~ipyvirt.EventImpl` factory::

    python -m ipyvirt.testing mypackage.module:factory [--daemon-uri URI]

or from Python: :func:`run_conformance` for a report, :func:`run_clause` for one clause
(raises :class:`ClauseFailed`), which makes a parametrized pytest test a few lines.

The ``libvirt``, ``daemon`` and ``guest`` modes register the implementation with libvirt,
which allows one registration per process: run them in a fresh process (the command line
does), or pass an already registered implementation. The ``guest`` mode needs a running QEMU
guest whose serial console runs a shell (``--guest NAME --guest-uri URI``;
:mod:`ipyvirt.testing.guest` makes one): a console is the one stream that carries data both
ways and that a peer can close.
"""

from __future__ import annotations

import asyncio
import time
from asyncio import _get_running_loop as asyncio_running_loop
from collections.abc import Iterable
from dataclasses import dataclass

from ipyvirt.errors import IpyvirtError
from ipyvirt.eventimpl import EventImpl
from ipyvirt.testing.bench import (
    Bench,
    ClauseFailed,
    DirectDriver,
    ImplFactory,
    LibvirtDriver,
    run_bench,
)
from ipyvirt.testing.clauses import CLAUSES, Clause

__all__ = [
    "CLAUSES",
    "Clause",
    "ClauseFailed",
    "ClauseResult",
    "clauses_for",
    "run_clause",
    "run_conformance",
]


@dataclass(frozen=True)
class ClauseResult:
    """How one clause went in one mode, as :func:`run_conformance` reports it."""

    #: the clause's :attr:`Clause.name`
    clause: str
    mode: str
    passed: bool
    #: why it failed, "" when it passed
    detail: str
    seconds: float

    @property
    def id(self) -> str:
        """``clause[mode]``, e.g. ``ids-positive[direct]``."""
        return f"{self.clause}[{self.mode}]"


def clauses_for(mode: str) -> list[Clause]:
    """The clauses that run in *mode* ("direct", "libvirt", "daemon" or "guest"), in order."""
    return [c for c in CLAUSES if mode in c.modes]


def run_clause(
    clause: Clause,
    mode: str,
    *,
    factory: ImplFactory | None = None,
    loop: asyncio.AbstractEventLoop | None = None,
    daemon_uri: str | None = None,
    guest: tuple[str, str] | None = None,
) -> None:
    """Run one clause; raise :class:`ClauseFailed` if the implementation breaks it.

    ``direct``: a fresh loop and a fresh ``factory(loop)`` implementation, closed after.
    ``libvirt``/``daemon``/``guest``: through libvirt, on *loop*, which the registered
    implementation must serve (the caller binds it). *guest* is ``(uri, domain)``: a running
    QEMU domain whose serial console runs a shell.
    """
    if asyncio_running_loop() is not None:
        raise IpyvirtError(
            "the conformance kit runs loops of its own and cannot run inside a running one "
            "(a notebook cell): call it in a thread, e.g. "
            "await asyncio.to_thread(run_conformance, factory)"
        )
    if mode == "direct":
        if factory is None:
            raise ValueError("direct mode needs an implementation factory")
        own = asyncio.new_event_loop()
        impl = factory(own)
        try:
            run_bench(own, Bench(own, DirectDriver(impl), impl, factory), clause.check)
        finally:
            close = getattr(impl, "close", None)
            if callable(close):
                close()
            own.close()
        return
    if loop is None:
        raise ValueError(f"{mode} mode needs the loop the registered implementation serves")
    if mode == "daemon" and not daemon_uri:
        raise ValueError("daemon mode needs daemon_uri, e.g. test+unix:///default?socket=PATH")
    if mode == "guest" and not guest:
        raise ValueError("guest mode needs guest=(uri, domain): a QEMU guest with a shell")
    bench = Bench(loop, LibvirtDriver(), None, factory, daemon_uri, guest)
    run_bench(loop, bench, clause.check)


def run_conformance(
    factory: ImplFactory,
    *,
    modes: Iterable[str] = ("direct", "libvirt"),
    daemon_uri: str | None = None,
    guest: tuple[str, str] | None = None,
    only: Iterable[str] | None = None,
) -> list[ClauseResult]:
    """Run every clause of *modes* against *factory*'s implementations.

    For ``libvirt``, ``daemon`` and ``guest`` modes one implementation is built on a loop of
    its own and registered with libvirt: call this in a process that has registered none.
    *only* limits the run to the named clauses.
    """
    results: list[ClauseResult] = []
    modes = list(modes)
    if asyncio_running_loop() is not None:
        run_clause(CLAUSES[0], "direct", factory=factory)  # raises the error that says why
    registered: tuple[EventImpl, asyncio.AbstractEventLoop] | None = None
    wanted = set(only) if only is not None else None
    for mode in modes:
        loop = None
        if mode != "direct":
            if registered is None:
                loop = asyncio.new_event_loop()
                registered = (factory(loop).register(), loop)
            loop = registered[1]
        for clause in clauses_for(mode):
            if wanted is not None and clause.name not in wanted:
                continue
            start = time.perf_counter()
            try:
                run_clause(
                    clause, mode, factory=factory, loop=loop, daemon_uri=daemon_uri, guest=guest
                )
            except ClauseFailed as err:
                detail = str(err)
            except Exception as err:
                detail = f"{type(err).__name__}: {err}"
            else:
                detail = ""
            results.append(
                ClauseResult(clause.name, mode, not detail, detail, time.perf_counter() - start)
            )
    return results

"""``%virt``: connect to hypervisors, list domains, follow events, look at the loop.

Options are traitlets, so ``%config VirtMagics.default_uri = "qemu:///system"`` works.
Misuse raises IPython's ``UsageError``: one line, no traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import Any, NoReturn

import libvirt
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import DisplayHandle, display
from traitlets import Bool, Int, Unicode, default

import ipyvirt
from ipyvirt import runtime
from ipyvirt.connection import ConnectFailed, Connection
from ipyvirt.credentials import Prompt
from ipyvirt.hub import Event, Subscription
from ipyvirt.tables import Table, Tables, domain_table, loop_table
from ipyvirt.widgets.base import Coalescer

__all__ = ["VirtMagics"]

_USAGE = """\
%virt connect [URI] [--rw] [--name NAME] [--auth]
                                           open a connection (read-only unless --rw;
                                           --auth asks for a user name and passphrase)
%virt disconnect [NAME]                    close it
%virt list [NAME]                          domains with their state and reason
%virt events [NAME] [--last N] [--follow | --stop]
                                           recent events; --follow keeps the output live
%virt dashboard [NAME]                     live domain table, actions, usage, events, loop
%virt loop                                 the event loop's fd watches, timers and counters
%virt status                               loops, threads and connections"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see %virt --help)")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """One parser a command, so errors name the command."""

    def parser(command: str) -> argparse.ArgumentParser:
        return _Parser(prog=f"%virt {command}", add_help=False)

    connect = parser("connect")
    connect.add_argument("uri", nargs="?")
    connect.add_argument("--rw", action="store_true")
    connect.add_argument("--name")
    connect.add_argument("--auth", action="store_true")
    disconnect, listing, dashboard = parser("disconnect"), parser("list"), parser("dashboard")
    for p in (disconnect, listing, dashboard):
        p.add_argument("name", nargs="?")
    events = parser("events")
    events.add_argument("name", nargs="?")
    events.add_argument("--last", type=int, default=20)
    mode = events.add_mutually_exclusive_group()
    mode.add_argument("--follow", action="store_true")
    mode.add_argument("--stop", action="store_true")
    return {
        "connect": connect,
        "disconnect": disconnect,
        "list": listing,
        "dashboard": dashboard,
        "events": events,
        "loop": parser("loop"),
        "status": parser("status"),
    }


@magics_class
class VirtMagics(Magics):
    default_uri = Unicode(
        help="The URI %virt connect opens when given none "
        "(default: $LIBVIRT_DEFAULT_URI, else test:///default)."
    ).tag(config=True)
    auto_reconnect = Bool(
        True,
        help="Reopen a connection %virt connect opened when it closes (daemon restart, "
        "network drop), with backoff; its widgets and subscriptions carry on.",
    ).tag(config=True)
    event_history = Int(
        1000, help="How many recent events each connection keeps for %virt events."
    ).tag(config=True)

    @default("default_uri")
    def _default_uri(self) -> str:
        return os.environ.get("LIBVIRT_DEFAULT_URI") or "test:///default"

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.connections: dict[str, Connection] = {}
        self.current: str | None = None
        self._followers: list[tuple[Subscription, DisplayHandle]] = []
        self._parsers = _parsers()

    @line_magic
    def virt(self, line: str) -> Any:
        """Explore libvirt hypervisors: %virt --help lists the commands."""
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise UsageError(f"%virt: {err}") from None
        if not words or words[0] in ("-h", "--help", "help"):
            print(_USAGE)
            return None
        command = words[0]
        if command not in self._parsers:
            raise UsageError(f"%virt: unknown command {command!r} (see %virt --help)")
        args = self._parsers[command].parse_args(words[1:])
        handler = getattr(self, f"_{command}")
        try:
            return handler(args)
        except ConnectFailed as err:
            raise UsageError(str(err)) from None
        except libvirt.libvirtError as err:
            raise UsageError(f"libvirt: {err.get_error_message()}") from None

    # -- commands ------------------------------------------------------------------------------

    def _connect(self, args: argparse.Namespace) -> Connection:
        uri = args.uri or self.default_uri
        name = args.name or uri
        if name in self.connections:
            raise UsageError(
                f"%virt connect: a connection named {name!r} is open: %virt disconnect "
                f"{shlex.quote(name)} first, or give another --name"
            )
        conn = Connection(
            uri=uri,
            readonly=not args.rw,
            name=name,
            history=self.event_history,
            reconnect=self.auto_reconnect,
            credentials=Prompt() if args.auth else None,
        )
        self.connections[name] = conn
        self.current = name
        return conn

    def _connection(self, name: str | None) -> Connection:
        name = name or self.current
        if name is None:
            raise UsageError("%virt: no connection is open: %virt connect [URI] first")
        if name not in self.connections:
            known = ", ".join(sorted(self.connections)) or "none"
            raise UsageError(f"%virt: no connection named {name!r} (open: {known})")
        return self.connections[name]

    def _disconnect(self, args: argparse.Namespace) -> None:
        conn = self._connection(args.name)
        self._stop_following(conn)
        conn.close()
        del self.connections[conn.name]
        if self.current == conn.name:
            self.current = next(reversed(self.connections), None)
        print(f"disconnected from {conn.uri}")

    def _list(self, args: argparse.Namespace) -> Table:
        conn = self._connection(args.name)
        try:
            return domain_table(conn.conn, title=f"domains on {conn.name}")
        except libvirt.libvirtError as err:
            raise UsageError(f"{conn.uri}: {err.get_error_message()}") from None

    def _events(self, args: argparse.Namespace) -> Table | None:
        conn = self._connection(args.name)
        if args.stop:
            self._stop_following(conn)
            return None
        if args.follow:
            handle = display(_event_table(conn, args.last), display_id=True)  # type: ignore[no-untyped-call]
            assert handle is not None

            rt = runtime.current()
            assert rt is not None, "a Connection exists, so ipyvirt runs"
            # a storm of events becomes at most 20 redraws a second
            redraw = Coalescer(
                rt.main_loop, 0.05, lambda: handle.update(_event_table(conn, args.last))
            )

            def update(event: Event) -> None:
                redraw.poke()

            self._followers.append((conn.subscribe(update), handle))
            return None
        return _event_table(conn, args.last)

    def _stop_following(self, conn: Connection) -> None:
        for sub, handle in list(self._followers):
            if sub.hub is conn.hub:
                sub.cancel()
                self._followers.remove((sub, handle))

    def _dashboard(self, args: argparse.Namespace) -> Any:
        from ipyvirt.widgets import Dashboard

        return Dashboard(self._connection(args.name))

    def _loop(self, args: argparse.Namespace) -> Tables:
        rt = runtime.current()
        if rt is None:
            raise UsageError("%virt loop: ipyvirt's event loop is not running")
        return loop_table(rt.impl.statistics())

    def _status(self, args: argparse.Namespace) -> Table:
        rt = runtime.current()
        major, rest = divmod(libvirt.getVersion(), 1_000_000)
        rows: list[tuple[object, ...]] = [
            ("ipyvirt", ipyvirt.__version__),
            ("libvirt", f"{major}.{rest // 1000}.{rest % 1000}"),
        ]
        if rt is None:
            rows.append(("event loop", "not running"))
        else:
            rows += [
                ("event loop", repr(rt.impl)),
                ("timers and event callbacks", f"main loop, thread {rt.main_thread_name}"),
                ("fd watches (keepalive)", "io loop, thread ipyvirt-io"),
            ]
        for conn in self.connections.values():
            rows.append((f"connection {conn.name}", repr(conn)))
        return Table(("what", "state"), tuple(rows), "ipyvirt status")

    def close(self) -> None:
        """Close every connection %virt opened and stop following events."""
        for sub, _ in self._followers:
            sub.cancel()
        self._followers.clear()
        for conn in self.connections.values():
            conn.close()
        self.connections.clear()
        self.current = None


def _event_table(conn: Connection, last: int) -> Table:
    events = list(conn.history)[-last:] if last > 0 else []
    rows = tuple((e.clock, e.family, e.subject, e.name, e.detail) for e in events)
    older = len(conn.history) - len(events) + conn.dropped
    note = f"{older} older events not shown" if older else ""
    return Table(
        ("time", "family", "subject", "event", "detail"), rows, f"events on {conn.name}", note
    )

"""``%virt``: connect to hypervisors, list domains, follow events, look at the loop.

Options are traitlets, so ``%config VirtMagics.default_uri = "qemu:///system"`` works.
Misuse raises IPython's ``UsageError``: one line, no traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
from dataclasses import dataclass
from typing import Any

import libvirt
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.display import DisplayHandle, display
from traitlets import Bool, Int, Unicode, default

import ipyvirt
from ipyvirt import runtime
from ipyvirt.commands import HelpRequested, build_parser, overview
from ipyvirt.connection import ConnectFailed, Connection, NoSuchDomain
from ipyvirt.credentials import Prompt
from ipyvirt.fleet import Fleet
from ipyvirt.hub import Event, Subscription
from ipyvirt.models.event_history import COLUMNS, event_row
from ipyvirt.tables import Table, Tables, domain_table, loop_table
from ipyvirt.widgets.base import Coalescer

__all__ = ["VirtMagics"]


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
        self._followers: dict[str, _Follower] = {}
        #: the hosts of %virt fleet (made by the first %virt fleet add)
        self.fleet: Fleet | None = None
        self._parser = build_parser()

    @line_magic
    def virt(self, line: str) -> Any:
        """Explore libvirt hypervisors: %virt --help lists the commands."""
        try:
            words = shlex.split(line)
        except ValueError as err:
            raise UsageError(f"%virt: {err}; check the quotes") from None
        if words and words[0] == "help":  # %virt help [COMMAND]
            words = [*words[1:2], "--help"]
        if words and words[0] == "fleet":
            words = _options_first(words)
        known = self._parser.commands()
        if words and not words[0].startswith("-") and words[0] not in known:
            raise UsageError(
                f"%virt: unknown command {words[0]!r} (commands: {', '.join(known)}); "
                "see %virt --help"
            )
        try:
            args, extra = self._parser.parse_known_args(words)
        except HelpRequested as shown:
            print(shown.text)
            return None
        if extra:  # named by the command they follow
            where = self._parser if args.command is None else self._parser.command(args.command)
            where.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            print(overview(self._parser))
            return None
        handler = getattr(self, f"_{args.command}")
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
        self._stop_following(conn, "no longer live: %virt disconnect closed the connection")
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
            if not self._stop_following(conn, "stopped by %virt events --stop"):
                print(f"%virt events: no live table on {conn.name} to stop")
            return None
        if not args.follow:
            return _event_table(conn, args.last)
        # A second --follow on the same connection replaces the first rather than being
        # refused: it is what re-running a cell (or Run All twice) does, and the user looks at
        # the newest output. Two live tables of the same events would only repeat each other.
        if self._stop_following(conn, "no longer live: a later %virt events --follow replaced it"):
            print(f"%virt events: this table replaces the earlier live one on {conn.name}")
        handle = display(_event_table(conn, args.last), display_id=True)  # type: ignore[no-untyped-call]
        assert handle is not None
        rt = runtime.current()
        assert rt is not None, "a Connection exists, so ipyvirt runs"
        # a storm of events becomes at most 20 redraws a second
        redraw = Coalescer(rt.main_loop, 0.05, lambda: handle.update(_event_table(conn, args.last)))

        def update(event: Event) -> None:
            redraw.poke()

        self._followers[conn.name] = _Follower(
            conn, args.last, handle, redraw, conn.subscribe(update)
        )
        return None

    def _stop_following(self, conn: Connection, why: str) -> bool:
        """Stop the live table of *conn*, if any, noting *why* under it; whether there was one."""
        follower = self._followers.pop(conn.name, None)
        if follower is not None:
            follower.stop(why)
        return follower is not None

    def _dashboard(self, args: argparse.Namespace) -> Any:
        from ipyvirt.widgets import Dashboard

        conn = self._connection(args.name)
        try:
            return Dashboard(conn, thumbnails=args.thumbnails)
        except ValueError as err:  # thumbnails on a read-only connection: the user can fix it
            raise UsageError(f"%virt dashboard: {err}") from None

    def _explore(self, args: argparse.Namespace) -> Any:
        from ipyvirt.widgets import Explorer

        return Explorer(self._connection(args.name))

    def _show(self, args: argparse.Namespace) -> Any:
        from ipyvirt.widgets import DomainView

        conn = self._connection(args.name)
        try:
            return DomainView(conn, args.domain)
        except NoSuchDomain as err:
            raise UsageError(f"%virt show: {err}") from None

    def _fleet(self, args: argparse.Namespace) -> Any:
        action, targets = args.action, args.targets
        if action in ("list", "dashboard") and targets:
            raise UsageError(f"%virt fleet {action} takes no arguments; see %virt fleet --help")
        if action in ("add", "remove") and not targets:
            what = "URIs" if action == "add" else "host names"
            raise UsageError(f"%virt fleet {action}: give {what}; see %virt fleet --help")
        if self.fleet is None:
            if action != "add":
                raise UsageError("%virt fleet: the fleet is empty: %virt fleet add URI... first")
            self.fleet = Fleet(history=self.event_history)
        fleet = self.fleet
        if args.timeout is not None:
            if args.timeout <= 0:
                raise UsageError("%virt fleet --timeout: give a number of seconds above 0")
            fleet.timeout = args.timeout
        if action == "add":
            try:
                added = fleet.add(*targets, readonly=not args.rw)
            except ValueError as err:
                raise UsageError(f"%virt fleet add: {err}") from None
            names = ", ".join(h.name for h in added)
            print(f"adding {len(added)} hosts ({names}): %virt fleet list shows their health")
            if fleet.note:
                print(fleet.note)
            return None
        if action == "remove":
            missing = [n for n in targets if n not in fleet.hosts]
            if missing:
                known = ", ".join(sorted(fleet.hosts)) or "none"
                raise UsageError(
                    f"%virt fleet remove: no host named {', '.join(missing)} (hosts: {known})"
                )
            for name in targets:
                fleet.remove(name)
            print(f"removed {', '.join(targets)}")
            return None
        if action == "list":
            return fleet.list()
        from ipyvirt.widgets import FleetDashboard

        return FleetDashboard(fleet)

    def _console(self, args: argparse.Namespace) -> Any:
        from ipyvirt.models.console import ConsoleError
        from ipyvirt.widgets import Console

        conn = self._connection(args.name)
        try:
            return Console(conn.domain(args.domain), conn=conn, force=args.force)
        except (ConsoleError, NoSuchDomain) as err:
            raise UsageError(f"%virt console: {err}") from None

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

    def close(self) -> int:
        """Close every connection %virt opened and stop following events; how many closed."""
        for conn in list(self.connections.values()):
            self._stop_following(conn, "no longer live: ipyvirt was unloaded")
        closed = len(self.connections)
        for conn in self.connections.values():
            conn.close()
        if self.fleet is not None:
            closed += len(self.fleet)
            self.fleet.close()
            self.fleet = None
        self.connections.clear()
        self.current = None
        return closed


def _options_first(words: list[str]) -> list[str]:
    """``fleet add --rw URI...`` as ``fleet --rw add URI...``: argparse gives a ``*``
    positional its (empty) share at the first positional word, so options after the action
    would be left over; ``parse_intermixed_args`` does not mix with subcommands."""
    options: list[str] = []
    rest: list[str] = []
    words_left = iter(words[1:])
    for word in words_left:
        if word.startswith("-"):
            options.append(word)
            value = next(words_left, None) if word == "--timeout" else None  # it takes one
            if value is not None:
                options.append(value)
        else:
            rest.append(word)
    return [words[0], *options, *rest]


@dataclass
class _Follower:
    """The live table of one ``%virt events --follow``."""

    conn: Connection
    last: int
    handle: DisplayHandle
    redraw: Coalescer
    subscription: Subscription

    def stop(self, why: str) -> None:
        self.subscription.cancel()
        self.redraw.cancel()
        self.handle.update(_event_table(self.conn, self.last, why))  # type: ignore[no-untyped-call]


def _event_table(conn: Connection, last: int, why: str = "") -> Table:
    events = list(conn.history)[-last:] if last > 0 else []
    rows = tuple(event_row(e) for e in events)
    older = len(conn.history) - len(events) + conn.dropped
    note = "; ".join(filter(None, (f"{older} older events not shown" if older else "", why)))
    return Table(COLUMNS, rows, f"events on {conn.name}", note)

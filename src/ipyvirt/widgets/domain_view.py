"""One domain in depth, live, in one comm: overview with CPU and memory charts, devices,
snapshots (a tree, with create, revert, delete), the XML (highlighted; edited and defined on
read-write connections), a running job's progress, its screen (full size, while that tab
shows).

The kernel reads the domain off the loop (:mod:`ipyvirt.models.domain_view`) when the view
opens, after each of its events (coalesced) and after each action, and sets the traits that
changed. While displayed it polls the domain's counters and job every *interval* seconds;
the view asks for the chart's window once (``{"do": "hello"}``), then gets each new frame.
The screen tab asks ``{"do": "screen", "on": true}`` when it shows and every *interval*
while it does, ``false`` when it hides or goes: a :class:`~ipyvirt.widgets.screen.ScreenFeed`
reads a picture off the loop every *interval* seconds (at least 2) in between only, and
stops by itself 2.5 intervals after the last ask (a closed browser says nothing).
The view asks for everything else: ``define``, ``discard`` (the edited text),
``snapshot`` (``op``: create, revert, delete), ``confirm``, ``cancel``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import libvirt
import traitlets

from ipyvirt.connection import Connection, NoSuchDomain
from ipyvirt.errors import known_names
from ipyvirt.hub import Event
from ipyvirt.models import domain_view as dv
from ipyvirt.models.offloop import OffLoop
from ipyvirt.models.screen import screenshot
from ipyvirt.models.thumbnails import THUMB_STATES
from ipyvirt.models.usage import UsageSamples
from ipyvirt.widgets.base import Coalescer, Repeater
from ipyvirt.widgets.screen import ScreenFeed
from ipyvirt.widgets.view import View, css, esm

__all__ = ["DomainView"]

log = logging.getLogger("ipyvirt")

READ_ONLY = "read-only connection: %virt connect --rw (or libvirt.open) to change the domain"

# a snapshot created or deleted elsewhere sends no event (libvirt has none for snapshots):
# what the view shows is read again this often, besides after every event
_RESYNC = 30.0


class DomainView(View):
    """The domain *name* (or a ``libvirt.virDomain``) of *conn* in depth, following its
    events. On read-write connections its XML can be edited and defined (libvirt validates
    it first; a rejected definition changes nothing and keeps your text) and snapshots
    created, reverted and deleted (the last two asked first). It polls CPU, memory and the
    running job every *interval* seconds while displayed, over the last *history* polls.
    Its "screen" tab shows the domain's screen full size (``screen``, a
    :class:`~ipyvirt.widgets.screen.ScreenFeed`), read only while that tab shows.
    """

    _esm = esm("domain_view")
    _css = css("domain_view")

    uri = traitlets.Unicode("").tag(sync=True)
    name = traitlets.Unicode("").tag(sync=True)
    #: why the view may not change the domain ("" on a read-write connection)
    readonly = traitlets.Unicode("").tag(sync=True)
    overview = traitlets.Dict().tag(sync=True)
    devices = traitlets.Dict().tag(sync=True)
    #: the snapshot tree, depth first; None where the driver has no snapshots
    snapshots = traitlets.Any(None).tag(sync=True)  # a list, or None: Any takes both
    #: the XML as it is now, and the persistent definition (what define replaces)
    xml = traitlets.Unicode("").tag(sync=True)
    definition = traitlets.Unicode("").tag(sync=True)
    #: the running job ``{"text", "percent"}``, and the last completion, one line
    job = traitlets.Dict().tag(sync=True)
    completed = traitlets.Unicode("").tag(sync=True)
    #: the latest event about the domain, one line
    last_event = traitlets.Unicode("").tag(sync=True)
    #: "" while the domain exists; else one line saying it is gone
    gone = traitlets.Unicode("").tag(sync=True)
    #: a confirmation asked for ("" when none)
    question = traitlets.Unicode("").tag(sync=True)
    #: the last action's outcome, one line; an error starts with "error: "
    outcome = traitlets.Unicode("").tag(sync=True)
    #: libvirt's reason the last define was refused, and the text refused (kept, not lost)
    define_error = traitlets.Unicode("").tag(sync=True)
    draft = traitlets.Unicode("").tag(sync=True)
    #: an action is running
    busy = traitlets.Bool(False).tag(sync=True)
    #: the screen tab's line: "" while pictures come, else why none does ("no screen")
    screen_status = traitlets.Unicode("").tag(sync=True)
    interval = traitlets.Float(2.0).tag(sync=True)
    history = traitlets.Int(30).tag(sync=True)

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        name: str | libvirt.virDomain,
        *,
        interval: float = 2.0,
        history: int = 30,
    ) -> None:
        if interval <= 0 or history < 2:
            raise ValueError(
                f"DomainView needs interval > 0 and history >= 2: got {interval} and {history}"
            )
        if isinstance(name, libvirt.virDomain):
            name = name.name()
        if not isinstance(name, str):
            raise TypeError(f"give a domain name or a libvirt.virDomain, not {type(name).__name__}")
        super().__init__(interval=interval, history=history)
        self._live(conn)
        self.uri = self.conn.name
        self.name = name
        self.readonly = READ_ONLY if self.conn.readonly else ""
        try:
            reading = dv.read_domain(self.conn.reader, name, self.conn.history)
        except BaseException:
            self.close()
            raise
        if reading.details is None:
            known = known_names(d.name() for d in self.conn.reader.listAllDomains())
            self.close()
            raise NoSuchDomain(
                f"no domain named {name!r} on {self.conn.uri} ({known}); %virt list shows them"
            )
        loop = self._rt.main_loop
        self.usage = UsageSamples(history)
        self._reads = OffLoop(loop, name="ipyvirt-domain")
        self._polls = OffLoop(loop, name="ipyvirt-domain-poll")
        self._calls = OffLoop(loop, name="ipyvirt-domain-act", limit=None)
        self._coalescer = Coalescer(loop, 0.05, self._read)
        self._poller = Repeater(loop, interval, self.poll)
        self._resync = Repeater(loop, _RESYNC, self._coalescer.poke)
        # libvirt refuses a read-only connection a screenshot: the user's connection reads it
        self.screen = ScreenFeed(
            loop,
            lambda: screenshot(self.conn.conn.lookupByName(name)),
            max(interval, 2.0),
            self.send,
            self._say_screen,
            why_not=self._no_screen,
            name="ipyvirt-domain-screen",
        )
        self._pending: tuple[str, str] | None = None
        #: reads applied so far (tests wait for them)
        self.reads = 0
        self._apply(reading)
        self._subscriptions = [
            self.conn.subscribe(self._on_event, families=["domain"], subject=name),
            self.conn.subscribe(self._on_connection, families=["connection"]),
        ]
        self._resync.start()
        # the latest event about it that the connection kept, until a newer one comes
        for event in reversed(list(self.conn.history)):
            if event.family == "domain" and event.subject == name:
                self._say_event(event)
                break

    # -- events and reads ------------------------------------------------------------------

    def _say_event(self, event: Event) -> None:
        self.last_event = f"{event.clock} {event.name}" + (
            f" ({event.detail})" if event.detail and event.kind == "lifecycle" else ""
        )

    def _on_event(self, event: Event) -> None:
        self._say_event(event)
        if event.kind == "job_completed":
            params = event.args[0] if event.args and isinstance(event.args[0], dict) else {}
            self.completed = dv.completed_text(params, event.time)
        self._coalescer.poke()

    def _on_connection(self, event: Event) -> None:
        if event.kind == "reconnect":  # what changed meanwhile sent no event here
            self._coalescer.poke()

    def _read(self) -> None:
        if self._shut:
            return
        if self._reads.busy:
            self._again = True
            return
        self._again = False
        reader, name, history = self.conn.reader, self.name, self.conn.history
        self._reads.submit(lambda: dv.read_domain(reader, name, history), self._apply, self._fail)

    def _apply(self, reading: dv.DomainReading) -> None:
        self.reads += 1
        details = reading.details
        with self.hold_sync():
            if details is None:
                when = time.strftime("%H:%M:%S")
                self.gone = (
                    f"{self.name} is no longer defined on {self.uri} (noticed {when}): "
                    "what shows is how it was"
                )
                self.overview = {**self.overview, "state": "gone", "reason": "", "uptime": None}
            else:
                self.gone = ""
                self.overview = dv.overview(details)
                self.devices = dv.devices(details)
                self.snapshots = dv.snapshot_rows(details)
                self.xml = reading.xml
                self.definition = reading.definition
                if details.state != "running":
                    self.job = {"text": "no job running (the domain is not running)"}
        if getattr(self, "_again", False):
            self._coalescer.poke()

    def _fail(self, err: BaseException) -> None:
        log.error("ipyvirt: reading domain %s failed", self.name, exc_info=err)
        self.outcome = f"error: reading {self.name}: {_message(err)}"

    # -- the charts and the job, polled while displayed -------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self._start_polling()  # poll only once someone looks
        return super()._repr_mimebundle_(**kwargs)

    def _start_polling(self) -> None:
        if not self._poller.running:
            self.poll()  # the first figures now, not one interval later
            self._poller.start()

    def poll(self) -> None:
        """Read the domain's CPU time, memory and job (on a worker) and show them."""
        if self._shut or self._polls.busy:
            return
        reader, name = self.conn.reader, self.name
        self._polls.submit(
            lambda: (time.monotonic(), dv.poll_domain(reader, name)), self._polled, self._fail
        )

    def _polled(self, read: tuple[float, dv.PollReading]) -> None:
        now, reading = read
        self.usage.add(now, [reading.sample] if reading.sample is not None else [])
        if reading.sample is not None:
            self.job = dv.job_progress(reading.job)
        self.send({"kind": "frame", "frame": _frame(self.usage.frames[-1])})

    def _say_screen(self, status: str) -> None:
        self.screen_status = status

    def _no_screen(self) -> str:
        """Why no picture is read now ("" when one is)."""
        if self.conn.readonly:
            return "screenshots need a read-write connection: %virt connect --rw"
        if self.gone or self.overview.get("state") not in THUMB_STATES:
            return "not running"
        return ""

    # -- what the view asks for --------------------------------------------------------------

    def _handle(self, do: str, content: dict[str, Any]) -> None:
        if do == "hello":  # a view rendered (perhaps inside a dashboard): the window, then frames
            self._start_polling()
            self.send({"kind": "window", "frames": [_frame(f) for f in self.usage.frames]})
        elif do == "screen":
            self.screen.ask(bool(content.get("on")), bool(content.get("fresh")))
        elif do == "define":
            self.define(str(content.get("xml", "")))
        elif do == "snapshot":
            self._snapshot(str(content.get("op", "")), str(content.get("name", "")), content)
        elif do == "discard":  # the user gave up the edited text
            self.draft = self.define_error = ""
        elif do == "confirm":
            pending, self._pending = self._pending, None
            self.question = ""
            if pending is not None:
                self._run(*pending)
        elif do == "cancel":
            self._pending = None
            self.question = ""
        else:
            log.warning("ipyvirt: the domain view asked %r", content)

    def _refused(self, what: str) -> bool:
        if self.readonly:
            self.outcome = f"error: {what}: {self.readonly}"
        elif self.gone:
            self.outcome = f"error: {what}: {self.name} is no longer defined"
        return bool(self.readonly or self.gone)

    def define(self, xml: str) -> None:
        """Define the domain from *xml*, validated by libvirt first; a refusal keeps the old
        definition and *xml* (``draft``), and says libvirt's reason (``define_error``)."""
        if self._refused("define"):
            self.draft = xml
            return
        wrong = dv.check_name(xml, self.name)
        if wrong:
            self.draft, self.define_error, self.outcome = xml, wrong, f"error: define: {wrong}"
            return
        self.draft = xml
        self._start(f"define {self.name}", lambda c: _define(c, xml), self._defined)

    def _defined(self, error: str) -> None:
        if error:  # the reason shows over the XML (define_error); here, only the outcome
            self.define_error = error
            self.outcome = f"error: define {self.name}: libvirt refused it, nothing changed"
        else:
            self.define_error = self.draft = ""
            self.outcome = f"define {self.name}: done"

    def _snapshot(self, op: str, snap: str, content: dict[str, Any]) -> None:
        if op not in ("create", "revert", "delete"):
            log.warning("ipyvirt: the domain view asked %r", content)
            return
        if self._refused(f"{op} snapshot"):
            return
        if op == "create":
            xml = dv.snapshot_xml(snap, str(content.get("description", "")))
            self._run("create", xml)
        elif op == "revert":
            self._pending = ("revert", snap)
            self.question = (
                f"revert {self.name} to snapshot {snap!r}? What it runs and holds now is lost"
            )
        else:
            self._pending = ("delete", snap)
            self.question = f"delete snapshot {snap!r} of {self.name}? It cannot be undone"

    def _run(self, op: str, arg: str) -> None:
        name = self.name
        if op == "create":
            what = f"create a snapshot of {name}"
            self._start(what, lambda c: _create(c, name, arg), self._said(what))
        elif op == "revert":
            what = f"revert {name} to {arg!r}"
            self._start(what, lambda c: _revert(c, name, arg), self._said(what))
        else:
            what = f"delete snapshot {arg!r}"
            self._start(what, lambda c: _delete(c, name, arg), self._said(what))

    def _said(self, what: str) -> Any:
        def say(error: str) -> None:
            self.outcome = f"error: {what}: {error}" if error else f"{what}: done"

        return say

    def _start(self, what: str, call: Any, done: Any) -> None:
        """Run *call(libvirt connection)* on a worker; *done(error or "")* on the loop, then a
        fresh read (libvirt sends no event for snapshots)."""
        self.outcome = f"{what} …"
        self.busy = True
        conn = self.conn.conn

        def finish(error: str) -> None:
            self.busy = self._calls.busy
            done(error)
            self._coalescer.poke()

        self._calls.submit(lambda: _guarded(call, conn), finish, lambda e: finish(_message(e)))

    def refresh(self) -> None:
        """Read the domain again now (libvirt sends no event for some changes: a snapshot
        made elsewhere; the view also reads everything every 30 s)."""
        self._coalescer.poke()

    # -- what callers and tests read ---------------------------------------------------------

    @property
    def settled(self) -> bool:
        """No read, poll or action is under way or waiting."""
        return not (
            self._reads.busy or self._calls.busy or self._polls.busy or self._coalescer.pending
        )

    def __repr__(self) -> str:
        o = self.overview
        state = f"{o.get('state', '?')}" + (f" ({o['reason']})" if o.get("reason") else "")
        head = f"DomainView of {self.name} on {self.uri}: {state}"
        return head + (f"; {self.gone}" if self.gone else "")

    def _closing(self) -> None:
        for part in ("_coalescer", "_poller", "_resync"):
            if hasattr(self, part):
                getattr(self, part).cancel()
        for sub in getattr(self, "_subscriptions", []):
            sub.cancel()
        if hasattr(self, "screen"):
            self.screen.close()
        for reads in ("_reads", "_polls", "_calls"):
            if hasattr(self, reads):  # an action under way uses the connection
                getattr(self, reads).close()


def _frame(frame: tuple[float, list[tuple[str, float | None, float | None]]]) -> dict[str, Any]:
    when, figures = frame
    cpu, mem = (figures[0][1], figures[0][2]) if figures else (None, None)
    return {"t": when, "cpu": cpu, "mem": mem}


def _message(err: BaseException) -> str:
    if isinstance(err, libvirt.libvirtError):
        return dv.one_line(err.get_error_message())
    return f"{type(err).__name__}: {err}"


def _guarded(call: Any, conn: libvirt.virConnect) -> str:
    """On a worker: *call(conn)*; libvirt's refusal as one line, "" when it worked."""
    try:
        call(conn)
    except libvirt.libvirtError as err:
        return dv.one_line(err.get_error_message())
    return ""


def _define(conn: libvirt.virConnect, xml: str) -> None:
    conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)


def _create(conn: libvirt.virConnect, name: str, xml: str) -> None:
    conn.lookupByName(name).snapshotCreateXML(xml)


def _revert(conn: libvirt.virConnect, name: str, snap: str) -> None:
    dom = conn.lookupByName(name)
    dom.revertToSnapshot(dom.snapshotLookupByName(snap))


def _delete(conn: libvirt.virConnect, name: str, snap: str) -> None:
    conn.lookupByName(name).snapshotLookupByName(snap).delete()

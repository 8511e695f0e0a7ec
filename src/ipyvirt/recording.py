"""Recording a connection's events to a file as they arrive: :func:`record`.

    with ipyvirt.record(conn, "storm.jsonl"):
        ...                                    # every event meanwhile is written down
    ipyvirt.read_recording("storm.jsonl").to_pandas()

The file is JSON Lines in the format :mod:`ipyvirt.records` describes; :func:`ipyvirt.replay`
plays it back into the widgets without a hypervisor.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import libvirt

from ipyvirt import runtime
from ipyvirt.connection import Connection
from ipyvirt.domains import DomainRow, query_all, query_domain
from ipyvirt.hub import Event
from ipyvirt.records import FORMAT, VERSION, RecordingError, event_record

__all__ = ["Recorder", "record"]

log = logging.getLogger("ipyvirt")

#: how long a recorded event may sit in the file's buffer: a burst becomes one write
_FLUSH_EVERY: Final = 0.1


class Recorder:
    """Writes the events of a :class:`Connection` to a JSON Lines file as they arrive on
    ipyvirt's main loop, until :meth:`stop` (or the end of a ``with`` block, or the
    connection's close).

    With *rows*, each domain event also records its domain's row as read just after it
    (a few libvirt calls an event), and the recording starts with every domain's row: what
    a replayed :class:`~ipyvirt.widgets.DomainTable` shows. With *history*, the events the
    connection already kept (:attr:`Connection.history`) are written first.
    """

    def __init__(
        self,
        conn: Connection,
        path: str | Path,
        *,
        rows: bool = True,
        history: bool = False,
        owns_connection: bool = False,
    ) -> None:
        rt = runtime.current()
        if rt is None:  # a Connection exists, so only after ipyvirt.stop()
            raise RecordingError("ipyvirt's event loop is not running: ipyvirt.start() first")
        self._rt = rt
        self._loop: asyncio.AbstractEventLoop = rt.main_loop
        self.path = Path(path)
        self.connection = conn
        self.rows = rows
        #: events written so far
        self.count = 0
        #: why recording stopped early (a full disk ...), one line; None while all is well
        self.error: str | None = None
        self._owns = owns_connection
        self._lock = threading.Lock()
        self._flush_at: asyncio.TimerHandle | None = None
        try:
            domains = self._domains() if rows else None
            # "x": never overwrite, above all not an earlier recording
            self._file: IO[str] | None = open(self.path, "x", encoding="utf-8")  # noqa: SIM115
        except BaseException:
            if owns_connection:
                conn.close()
            raise
        self._write(
            {
                "record": "start",
                "format": FORMAT,
                "version": VERSION,
                "host": conn.uri,
                "connection": conn.name,
                "time": time.time(),
                "domains": domains,
            }
        )
        if history:
            for event in list(conn.history):
                self._write(event_record(event, conn.uri))
                self.count += 1
        self._subscription = conn.subscribe(self._on_event)
        conn.depend(self)

    def _domains(self) -> list[dict[str, Any]]:
        try:
            rows = sorted(query_all(self.connection.reader).values(), key=lambda r: r.name)
        except libvirt.libvirtError as err:
            raise RecordingError(
                f"cannot read the domains of {self.connection.uri} "
                f"({err.get_error_message()}): record with rows=False"
            ) from None
        # a one-host row's host ("") is left out: the format is the one it always was
        return [{k: v for k, v in dataclasses.asdict(r).items() if k != "host" or v} for r in rows]

    def __repr__(self) -> str:
        state = "recording" if self.active else f"stopped{': ' + self.error if self.error else ''}"
        return (
            f"<ipyvirt.Recorder to {self.path}: {self.count} events from "
            f"{self.connection.uri}, {state}>"
        )

    @property
    def active(self) -> bool:
        return self._file is not None

    def _on_event(self, event: Event) -> None:
        """On the main loop, as each event arrives."""
        if self._file is None:
            return
        has_row = self.rows and event.family == "domain"
        row: DomainRow | None = None
        if has_row:
            has_row, row = self._row(event.subject)
        record = event_record(event, self.connection.uri, has_row=has_row, row=row)
        if self._write(record):
            self.count += 1
            if self._flush_at is None:
                self._flush_at = self._loop.call_later(_FLUSH_EVERY, self._flush)

    def _row(self, name: str) -> tuple[bool, DomainRow | None]:
        """(recorded, the row): the domain's row now, None if it is gone."""
        try:
            return True, query_domain(self.connection.reader.lookupByName(name))
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return True, None
            return False, None  # the connection is gone: its close event follows

    def _write(self, record: dict[str, Any]) -> bool:
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                return False
            try:
                self._file.write(line)
            except OSError as err:
                self._failed(err)
                return False
        return True

    def _flush(self) -> None:
        self._flush_at = None
        with self._lock:
            if self._file is not None:
                try:
                    self._file.flush()
                except OSError as err:
                    self._failed(err)

    def _failed(self, err: OSError) -> None:
        """Stop writing (under the lock): the lines already in the file stay readable."""
        self.error = (
            f"recording to {self.path} stopped after {self.count} events: "
            f"{err.strerror or err}; free some space or record to another path"
        )
        log.error("ipyvirt: %s", self.error)
        file, self._file = self._file, None
        try:
            if file is not None:
                file.close()
        except OSError:
            pass
        self._rt.call_soon(self._subscription.cancel)

    def stop(self) -> None:
        """Stop recording and close the file (from any thread; again is a no-op)."""
        self._subscription.cancel()
        with self._lock:
            file, self._file = self._file, None
            if file is not None:
                try:
                    stop = {"record": "stop", "time": time.time(), "events": self.count}
                    file.write(json.dumps(stop, separators=(",", ":")) + "\n")
                    file.close()
                except OSError as err:
                    self.error = f"closing {self.path}: {err.strerror or err}"
                    log.error("ipyvirt: %s", self.error)
        if self._owns:
            self.connection.close()

    #: Connection.close() closes what depends on it this way
    close = stop

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def record(
    conn: Connection | libvirt.virConnect,
    path: str | Path,
    *,
    rows: bool = True,
    history: bool = False,
) -> Recorder:
    """Record *conn*'s events to the JSON Lines file *path* (which must not exist yet) as they
    arrive, until the returned :class:`Recorder` stops: ``.stop()``, or use it in ``with``.

    *rows*: record each domain's row after its events, so a replayed domain table shows them
    (a few libvirt calls an event; ``rows=False`` for a storm on a remote daemon). *history*:
    first write the events *conn* already kept (only ``history=True``, then ``.stop()``,
    exports them). A path that cannot be written raises :class:`RecordingError` at once.
    """
    owns = not isinstance(conn, Connection)
    if owns:
        if not isinstance(conn, libvirt.virConnect):
            raise TypeError(
                "record() takes a libvirt connection or an ipyvirt.Connection, "
                f"not {type(conn).__name__}"
            )
        conn = Connection(conn, history=0)
    assert isinstance(conn, Connection)  # narrowed above
    try:
        return Recorder(conn, path, rows=rows, history=history, owns_connection=owns)
    except OSError as err:
        raise RecordingError(
            f"cannot record to {path}: {err.strerror or err}; "
            + (
                "choose a new file name (recordings are never overwritten)"
                if isinstance(err, FileExistsError)
                else "choose a path in a directory you can write to"
            )
        ) from None

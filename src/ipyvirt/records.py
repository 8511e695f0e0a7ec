"""Events as records: one JSON object per line (JSON Lines), read back as :class:`Event` s.

A recording is a file of lines, each a JSON object with a ``record`` field:

- ``start`` (the first line): ``format`` (``"ipyvirt-events"``), ``version`` (1), ``host``
  (the libvirt URI), ``connection`` (the ipyvirt connection's name), ``time``, and
  ``domains``: every domain's row when recording began (``null`` if not recorded);
- ``event``, one per event, in the order they arrived: ``host``, ``connection``, ``seq``,
  ``time`` (seconds since the epoch), ``family``, ``kind``, ``event_id`` (libvirt's number
  for the kind; ``null`` for the connection's own events), ``subject``, ``name``, ``detail``,
  ``args`` (libvirt's values; a tuple inside them is ``{"__tuple__": [...]}``), ``thread``,
  and for domain events, if recorded, ``row``: the domain's row as read just after the event
  (``null``: the domain was gone);
- ``stop`` (the last line, absent if the recording was cut short): ``time``, ``events``.

Every event line names its host, so the lines of several hosts can share a file or a table.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ipyvirt.domains import DomainRow
from ipyvirt.errors import IpyvirtError
from ipyvirt.hub import Event
from ipyvirt.names import FAMILIES, event_ids

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped]

__all__ = [
    "FORMAT",
    "VERSION",
    "Entry",
    "Recording",
    "RecordingError",
    "event_record",
    "read_recording",
    "to_pandas",
    "to_records",
]

FORMAT: Final = "ipyvirt-events"
VERSION: Final = 1

_EVENT_FIELDS: Final = ("seq", "time", "connection", "family", "kind", "subject", "name", "detail")
# a fleet row's host is optional: recordings of one host (all of them so far) have none
_ROW_FIELDS: Final = tuple(f.name for f in dataclasses.fields(DomainRow) if f.name != "host")


class RecordingError(IpyvirtError):
    """A recording that cannot be written or read."""


# -- writing ---------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """*value* as JSON can hold it, tuples marked so they come back as tuples."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)  # libvirt passes none such today; keep the line readable anyway


def _event_id(family: str, kind: str) -> int | None:
    if family not in FAMILIES:
        return None
    return next((i for i, k in event_ids(family).items() if k == kind), None)


def event_record(
    event: Event, host: str, *, has_row: bool = False, row: DomainRow | None = None
) -> dict[str, Any]:
    """The ``event`` record for *event* on *host*; with *has_row*, and *row* the domain's row
    after it (None: the domain was gone)."""
    record: dict[str, Any] = {"record": "event", "host": host}
    record.update((f, getattr(event, f)) for f in _EVENT_FIELDS)
    record["event_id"] = _event_id(event.family, event.kind)
    record["args"] = [_plain(a) for a in event.args]
    record["thread"] = event.thread
    if has_row:
        record["row"] = None if row is None else dataclasses.asdict(row)
    return record


def to_records(events: Iterable[Event], *, host: str = "") -> list[dict[str, Any]]:
    """*events* (a :attr:`Connection.history`, a list) as the ``event`` records a recording
    holds, JSON-ready: ``json.dumps`` each for a line of JSON Lines."""
    return [event_record(e, host) for e in events]


# -- reading ---------------------------------------------------------------------------------


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_unplain(v) for v in value["__tuple__"])
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def _row(value: Any) -> DomainRow:
    if not isinstance(value, dict) or set(value) - {"host"} != set(_ROW_FIELDS):
        raise ValueError(f"a domain row has the fields {', '.join(_ROW_FIELDS)}")
    return DomainRow(**value)


def _event(record: dict[str, Any]) -> Event:
    values = [record[f] for f in _EVENT_FIELDS]
    if not isinstance(values[0], int) or not isinstance(values[1], (int, float)):
        raise ValueError("seq must be an integer and time a number")
    if not all(isinstance(v, str) for v in values[2:]):
        raise ValueError(f"{', '.join(_EVENT_FIELDS[2:])} must be strings")
    args = record["args"]
    if not isinstance(args, list):
        raise ValueError("args must be a list")
    return Event(
        **dict(zip(_EVENT_FIELDS, values, strict=True)),
        args=tuple(_unplain(a) for a in args),
        thread=str(record.get("thread", "")),
    )


@dataclass(frozen=True)
class Entry:
    """One recorded event and, for a domain event, what its domain looked like after it."""

    event: Event
    host: str
    #: whether :attr:`row` was recorded
    has_row: bool = False
    #: the domain's row just after the event; None: the domain was gone
    row: DomainRow | None = None


@dataclass(frozen=True)
class Recording:
    """A recording read back: :func:`read_recording`."""

    path: Path
    #: the libvirt URI it was recorded from
    host: str
    #: the ipyvirt connection's name
    connection: str
    #: when recording began, seconds since the epoch
    started: float
    #: when it stopped; None if it was cut short (the process died)
    stopped: float | None
    #: every domain's row when recording began; None if rows were not recorded
    domains: tuple[DomainRow, ...] | None
    entries: tuple[Entry, ...]
    #: bad lines passed over (``skip_bad=True``)
    skipped: int = 0

    @property
    def events(self) -> list[Event]:
        """The recorded events, in the order they arrived."""
        return [e.event for e in self.entries]

    @property
    def duration(self) -> float:
        """Seconds from the first event to the last."""
        times = [e.event.time for e in self.entries]
        return max(times) - min(times) if times else 0.0

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        end = "" if self.stopped is not None else ", cut short"
        return (
            f"<ipyvirt.Recording {self.path.name}: {len(self)} events from {self.host} "
            f"over {self.duration:.1f} s{end}>"
        )

    def to_records(self) -> list[dict[str, Any]]:
        """The ``event`` records, as in the file."""
        return [event_record(e.event, e.host, has_row=e.has_row, row=e.row) for e in self.entries]

    def to_pandas(self) -> pandas.DataFrame:
        """A row per event: see :func:`to_pandas`."""
        return to_pandas(self)


def _fail(path: Path, number: int, why: str) -> RecordingError:
    return RecordingError(
        f"{path} line {number} is not an ipyvirt event record ({why}): the lines before it "
        f"are good; read_recording(path, skip_bad=True) passes over bad lines"
    )


def read_recording(path: str | Path, *, skip_bad: bool = False) -> Recording:
    """Read the recording at *path*. A line that is not a record (a corrupt file, a line cut
    short when the recording process died) raises :class:`RecordingError` naming it; with
    *skip_bad* it is passed over and counted in :attr:`Recording.skipped`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RecordingError(
            f"cannot read the recording {path}: {getattr(err, 'strerror', None) or err}; "
            "give the path of a file ipyvirt.record() wrote"
        ) from None
    lines = text.splitlines()
    start = _start(path, lines[0] if lines else "")
    entries: list[Entry] = []
    stopped: float | None = None
    skipped = 0
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
            if record.get("record") == "stop":
                stopped = float(record["time"])
                continue
            if record.get("record") != "event":
                raise ValueError(f"record is {record.get('record')!r}, not 'event'")
            event = _event(record)
            has_row = "row" in record
            row = _row(record["row"]) if has_row and record["row"] is not None else None
            entries.append(Entry(event, str(record.get("host", start["host"])), has_row, row))
        except (ValueError, KeyError, TypeError) as err:
            if not skip_bad:
                why = f"it has no {err} field" if isinstance(err, KeyError) else str(err)
                raise _fail(path, number, why) from None
            skipped += 1
    domains = start.get("domains")
    return Recording(
        path,
        str(start["host"]),
        str(start["connection"]),
        float(start["time"]),
        stopped,
        None if domains is None else tuple(_row(r) for r in domains),
        tuple(entries),
        skipped,
    )


def _start(path: Path, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError
        if "domains" in record and record["domains"] is not None:
            [_row(r) for r in record["domains"]]
        missing = {"host", "connection", "time"} - set(record)
        if missing:
            raise ValueError
    except (ValueError, TypeError):
        raise RecordingError(
            f"{path} is not an ipyvirt recording (its first line is not an {FORMAT} start "
            "record): give the path of a file ipyvirt.record() wrote"
        ) from None
    if record.get("version") != VERSION:
        raise RecordingError(
            f"{path} is a version {record.get('version')} recording; this ipyvirt reads "
            f"version {VERSION}: upgrade ipyvirt"
        )
    return record


# -- analysis --------------------------------------------------------------------------------


def to_pandas(source: Recording | Iterable[Event], *, host: str = "") -> pandas.DataFrame:
    """A row per event, for analysis: ``time`` (datetime64, UTC), ``seq`` (int64), ``host``,
    ``connection``, ``subject``, ``detail`` (strings), ``family``, ``kind``, ``name``
    (categories), ``event_id`` (Int64, missing for the connection's own events), ``state``
    (the domain's state just after the event, if recorded), ``args`` (objects).

    *source* is a :class:`Recording` or any events (a :attr:`Connection.history`), whose
    *host* is given. Needs pandas: ``pip install 'ipyvirt[analysis]'``.
    """
    if isinstance(source, Recording):
        entries = list(source.entries)
    else:
        entries = [Entry(e, host) for e in source]
    return entries_frame(entries)


def entries_frame(entries: list[Entry]) -> pandas.DataFrame:
    """:func:`to_pandas` of recorded entries, each with its own host."""
    try:
        import pandas as pd
    except ImportError:
        raise ImportError(
            "to_pandas() needs pandas: pip install 'ipyvirt[analysis]' (or pandas)"
        ) from None
    events = [e.event for e in entries]
    strings = {
        "host": [e.host for e in entries],
        "connection": [e.connection for e in events],
        "subject": [e.subject for e in events],
        "detail": [e.detail for e in events],
        "state": [e.row.state if e.row is not None else None for e in entries],
    }
    categories = {f: [getattr(e, f) for e in events] for f in ("family", "kind", "name")}
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([e.time for e in events], unit="s", utc=True),
            "seq": pd.array([e.seq for e in events], dtype="int64"),
            **{k: pd.array(v, dtype="string") for k, v in strings.items()},
            **{k: pd.Categorical(v) for k, v in categories.items()},
            "event_id": pd.array([_event_id(e.family, e.kind) for e in events], dtype="Int64"),
            "args": pd.Series([e.args for e in events], dtype=object),
        }
    )
    columns = ["time", "seq", "host", "connection", "family", "kind", "event_id", "subject"]
    return frame[[*columns, "name", "detail", "state", "args"]]

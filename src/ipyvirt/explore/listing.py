"""What every explorer model shares: records, listings of them, and reading libvirt where a
driver may lack the call.

A record is a frozen dataclass; its fields are plain values (``None`` where the driver could
not say) or, for what it holds (a pool's volumes), a :class:`Listing`. A listing renders as
an aligned text table (terminals) or HTML (notebooks), and gives plain dicts for a DataFrame.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

import libvirt

from ipyvirt.tables import Table

__all__ = [
    "NA",
    "Listing",
    "Record",
    "cell",
    "fields_table",
    "libvirt_connection",
    "optional",
    "size",
    "xml",
]

#: what a table shows for a value the driver could not give
NA = "n/a"

T = TypeVar("T")
R = TypeVar("R", bound="Record")


class Record:
    """A frozen dataclass shown as one table row (``cells()`` under ``COLUMNS``)."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()

    def cells(self) -> tuple[object, ...]:
        """The row as a table shows it."""
        raise NotImplementedError

    def to_record(self) -> dict[str, Any]:
        """The fields as a plain dict: values as read (sizes in bytes, ``None`` where the
        driver could not say), tuples as lists; listings it holds are left out (each has
        its own ``to_records()``)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, Listing):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class Listing(Sequence[R]):
    """Records of one kind, in order: a sequence of them, a table in a terminal or a
    notebook, and :meth:`to_records` for ``pandas.DataFrame``. ``listing["name"]`` finds a
    record by its ``name``."""

    columns: tuple[str, ...]
    items: tuple[R, ...]
    title: str = ""
    #: false when the driver has no such objects at all (libvirt's "not supported")
    supported: bool = True

    @overload
    def __getitem__(self, index: int) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[R]: ...
    @overload
    def __getitem__(self, index: str) -> R: ...

    def __getitem__(self, index: int | slice | str) -> R | Sequence[R]:
        if isinstance(index, str):
            for item in self.items:
                if getattr(item, "name", None) == index:
                    return item
            names = [str(getattr(i, "name", "")) for i in self.items]
            raise KeyError(
                f"no {index!r} in {self.title or 'this listing'} (there are: "
                f"{', '.join(names) or 'none'})"
            )
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[R]:
        return iter(self.items)

    def table(self) -> Table:
        """The records as one aligned table."""
        if not self.supported:
            return Table(self.columns, (), self.title, empty=f"{NA}: the driver has no such call")
        return Table(self.columns, tuple(r.cells() for r in self.items), self.title)

    def to_records(self) -> list[dict[str, Any]]:
        """A plain dict per record (see :meth:`Record.to_record`): ``pandas.DataFrame(...)``."""
        return [r.to_record() for r in self.items]

    def __repr__(self) -> str:
        return repr(self.table())

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()


def libvirt_connection(conn: object) -> libvirt.virConnect:
    """*conn* itself if it is a ``libvirt.virConnect``; an :class:`ipyvirt.Connection`'s
    own (the one you act through)."""
    if isinstance(conn, libvirt.virConnect):
        return conn
    inner = getattr(conn, "conn", None)
    if isinstance(inner, libvirt.virConnect):
        return inner
    raise TypeError(
        f"give a libvirt.virConnect or an ipyvirt.Connection, not {type(conn).__name__}"
    )


#: libvirt errors that mean "this driver, or this object now, cannot say": the field is None
_CANNOT_SAY = frozenset(
    {
        libvirt.VIR_ERR_NO_SUPPORT,
        libvirt.VIR_ERR_OPERATION_INVALID,  # e.g. an inactive pool's volumes
        libvirt.VIR_ERR_OPERATION_UNSUPPORTED,
        libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
        libvirt.VIR_ERR_AGENT_UNRESPONSIVE,
    }
)


def optional(read: Callable[[], T]) -> T | None:
    """``read()``, or None where the driver lacks the call (or cannot answer it for the
    object's present state). Any other libvirt error propagates."""
    try:
        return read()
    except libvirt.libvirtError as err:
        if err.get_error_code() in _CANNOT_SAY:
            return None
        raise


def xml(text: str) -> ET.Element:
    """libvirt's XML description, parsed."""
    return ET.fromstring(text)


def cell(value: object) -> object:
    """*value* as a table shows it: None as n/a, booleans as yes/no."""
    if value is None:
        return NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) or "-"
    return value


def size(n: int | None) -> str:
    """A byte count as people read it: ``"1.5 GiB"``."""
    if n is None:
        return NA
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if round(abs(value), 1) < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable: the loop returns at TiB")


def fields_table(title: str, labels: dict[str, object]) -> Table:
    """One record as a two-column table, a line per field (a host, a domain's overview)."""
    return Table(("field", "value"), tuple((k, cell(v)) for k, v in labels.items()), title)

"""One widget to walk a hypervisor: the host, its domains, networks, storage, node devices
and secrets, in tabs.

Comms: one for the tabs, one per part (the five :mod:`explorer_sections` and the
:class:`DomainTable`): seven. A part reads nothing until its tab is first shown (see
:mod:`ipyvirt.widgets.section`), so opening the explorer on a big host costs the domain
table's read and nothing else. The domains tab keeps a slot below the table for a view of
one domain (:meth:`Explorer.show_domain`, also what a click on a domain's name in the table
does); it costs no comm until one is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import ipywidgets as widgets
import libvirt
import traitlets

from ipyvirt.connection import Connection
from ipyvirt.widgets.base import LIVE, as_connection
from ipyvirt.widgets.domain_table import DomainTable
from ipyvirt.widgets.explorer_sections import (
    DevicesSection,
    HostSection,
    NetworksSection,
    SecretsSection,
    StorageSection,
)
from ipyvirt.widgets.section import Section

__all__ = ["TABS", "DomainViewFactory", "Explorer"]

#: the tabs' titles, in order
TABS = ("host", "domains", "networks", "storage", "devices", "secrets")
_DOMAINS = TABS.index("domains")

#: makes the view of one domain: ``factory(connection, domain_name) -> widget``
DomainViewFactory = Callable[[Connection, str], widgets.Widget]


def _domain_view(conn: Connection, name: str) -> widgets.Widget:
    from ipyvirt.widgets.domain_view import DomainView  # it imports the table: not at the top

    return DomainView(conn, name)


class Explorer(widgets.Tab):  # type: ignore[misc]
    """Tabs: host, domains, networks, storage, devices, secrets of *conn* (a libvirt
    connection or an :class:`ipyvirt.Connection`), each live by libvirt's events where the
    driver sends them (each tab says how it keeps current). Actions (start a network,
    delete a volume, ...) are enabled on read-write connections only.

    *domain_view* (default: ``Explorer.domain_view_factory``, a
    :class:`~ipyvirt.widgets.DomainView`) makes the view :meth:`show_domain` puts below the
    domain table; a click on a domain's name in the table shows it.
    """

    #: the default *domain_view* of new explorers (None: none; :meth:`show_domain` says so)
    domain_view_factory: ClassVar[DomainViewFactory | None] = staticmethod(_domain_view)

    # no Layout widget (a comm of its own) for the tabs, as for every view
    layout = traitlets.Instance(widgets.Layout, allow_none=True, default_value=None).tag(
        sync=True, **widgets.widget_serialization
    )

    def __init__(
        self,
        conn: Connection | libvirt.virConnect,
        *,
        domain_view: DomainViewFactory | None = None,
    ) -> None:
        if not isinstance(conn, Connection | libvirt.virConnect):
            raise TypeError(
                f"expected a libvirt connection or an ipyvirt.Connection, got {type(conn).__name__}"
            )
        self._conn, self._owns_conn = as_connection(conn)
        self.domain_view: DomainViewFactory | None = domain_view or type(self).domain_view_factory
        #: the domain view below the table, and the box that holds both (None: none shown)
        self.domain: widgets.Widget | None = None
        self._box: widgets.VBox | None = None
        try:
            self.host = HostSection(self._conn)
            self.domains = DomainTable(self._conn)
            self.networks = NetworksSection(self._conn)
            self.storage = StorageSection(self._conn)
            self.devices = DevicesSection(self._conn)
            self.secrets = SecretsSection(self._conn)
        except BaseException:
            if self._owns_conn:  # closes the parts already made, too
                self._conn.close()
            raise
        super().__init__(self._parts(), titles=TABS)
        if self.domain_view is not None:
            self.domains.on_open(self.show_domain)
        self._shut = False
        LIVE.add(self)
        self._conn.depend(self)

    def _parts(self) -> list[widgets.Widget]:
        return [self.host, self.domains, self.networks, self.storage, self.devices, self.secrets]

    @property
    def sections(self) -> tuple[Section, ...]:
        """The parts other than the domain table."""
        return (self.host, self.networks, self.storage, self.devices, self.secrets)

    def load(self) -> None:
        """Read every part now (a view reads a part when its tab is first shown): for code
        that uses the explorer without showing it."""
        for section in self.sections:
            section.load()

    def show_domain(self, name: str) -> widgets.Widget:
        """Show the view of domain *name* below the domain table (replacing one shown
        there) and select the domains tab; the view is made by *domain_view*."""
        if self.domain_view is None:
            raise ValueError(
                "this explorer has no domain view: give Explorer(conn, domain_view=...) "
                "or set Explorer.domain_view_factory"
            )
        view = self.domain_view(self._conn, name)
        self.close_domain()
        self.domain = view
        self._box = widgets.VBox([self.domains, view])
        parts = self._parts()
        parts[_DOMAINS] = self._box
        self.children = parts
        self.selected_index = _DOMAINS
        return view

    def close_domain(self) -> None:
        """Close the domain view below the table, if one is shown."""
        if self.domain is None:
            return
        self.children = self._parts()
        self.domain.close()
        self.domain = None
        if self._box is not None:
            self._box.close()
            self._box = None

    def __repr__(self) -> str:
        lines = [f"Explorer on {self._conn.uri} ({', '.join(TABS)})"]
        for section in self.sections:
            state = section.live if section.loaded else "not read yet (read when its tab is shown)"
            lines.append(f"  {section.KIND}: {state}")
        return "\n".join(lines)

    def close(self) -> None:
        if getattr(self, "_shut", True):
            return  # closing its connection closes it too
        self._shut = True
        self.close_domain()
        for part in self._parts():
            part.close()
        if self._owns_conn:
            self._conn.close()
        super().close()

"""DomainTableModel, without a kernel: rows read from test:///default, filter, sort, pages,
selection, which actions apply, the empty state, reasons that say something."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import libvirt
import pytest

from ipyvirt.domains import DomainRow, query_all, query_domain
from ipyvirt.models.actions import ACTIONS
from ipyvirt.models.domain_table import Change, DomainTableModel
from ipyvirt.models.host_groups import Group
from ipyvirt.names import DOMAIN_STATES


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    libvirt.registerErrorHandler(lambda *a: None, None)
    # test:///default is one hypervisor per process: clean up what we define
    c = libvirt.open("test:///default")
    xml = re.sub(r"<uuid>.*</uuid>", "", c.lookupByName("test").XMLDesc())
    for i in range(5):
        dom = c.defineXML(re.sub(r"<name>.*</name>", f"<name>vm-{i}</name>", xml))
        if i % 2:
            dom.create()
    c.lookupByName("vm-3").suspend()
    yield c
    for dom in c.listAllDomains():
        if dom.name().startswith("vm-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    c.close()


def _model(conn: libvirt.virConnect, page_size: int = 25) -> DomainTableModel:
    model = DomainTableModel(page_size)
    model.load(query_all(conn).values())
    return model


def _select(model: DomainTableModel, *names: str) -> None:
    for name in names:
        uuid = model.uuid_of(name)
        assert uuid is not None
        model.select(uuid)


def test_a_never_started_shut_off_domain_has_no_reason_not_unknown(
    conn: libvirt.virConnect,
) -> None:
    rows = {r.name: r for r in _model(conn).rows.values()}
    assert (rows["vm-0"].state, rows["vm-0"].reason) == ("shutoff", "")
    assert (rows["vm-1"].state, rows["vm-1"].reason) == ("running", "booted")
    conn.lookupByName("vm-1").destroy()
    assert query_domain(conn.lookupByName("vm-1")).reason == "destroyed"


def test_filter_sort_and_pages(conn: libvirt.virConnect) -> None:
    model = _model(conn, page_size=2)
    assert [r.name for r in model.shown()] == ["test", "vm-0"]
    assert model.pages == 3 and model.page_label() == "1-2 of 6"
    model.turn(5)
    assert model.page == 2 and [r.name for r in model.shown()] == ["vm-3", "vm-4"]
    model.look(state_filter="running")
    assert [r.name for r in model.view()] == ["test", "vm-1"]
    assert model.page == 0 and model.page_label() == "1-2 of 2"
    model.look(state_filter="all states", sort="state")
    assert [r.state for r in model.view()] == ["running"] * 2 + ["paused"] + ["shutoff"] * 3
    model.look(name_filter="VM", descending=True, sort="name")
    assert [r.name for r in model.view()] == ["vm-4", "vm-3", "vm-2", "vm-1", "vm-0"]


def test_bad_look_says_what_to_use(conn: libvirt.virConnect) -> None:
    model = _model(conn)
    with pytest.raises(ValueError, match="use 'all states' or one of running, paused"):
        model.look(state_filter="stopped")
    with pytest.raises(ValueError, match="use one of name, state, id"):
        model.look(sort="colour")


def test_an_action_applies_only_where_it_applies_to_every_selected_domain(
    conn: libvirt.virConnect,
) -> None:
    model = _model(conn)
    assert not any(model.applicable(a) for a in ACTIONS)
    assert model.why_not("start") == "select domains first"
    _select(model, "vm-0", "vm-2")
    assert [a for a in ACTIONS if model.applicable(a)] == ["start"]
    _select(model, "vm-1")  # running as well: nothing applies to both
    assert [a for a in ACTIONS if model.applicable(a)] == []
    assert model.why_not("start") == "start applies to crashed or shutoff domains: vm-1 is running"
    model.select_all(False)
    _select(model, "vm-1", "vm-3")  # running and paused
    assert [a for a in ACTIONS if model.applicable(a)] == ["destroy"]
    model.select_all(False)
    _select(model, "vm-3")
    assert [a for a in ACTIONS if model.applicable(a)] == ["resume", "destroy"]
    _select(model, "test")
    assert [a for a in ACTIONS if model.applicable(a)] == ["destroy"]


def test_rows_hidden_by_the_filter_count_for_nothing(conn: libvirt.virConnect) -> None:
    model = _model(conn)
    _select(model, "vm-0", "vm-1")
    model.look(state_filter="shutoff")  # vm-1 (running) is hidden
    assert [r.name for r in model.targets()] == ["vm-0"]
    assert model.applicable("start")
    model.look(state_filter="all states")
    assert not model.applicable("start")


def test_select_all_selects_what_the_filter_shows_on_every_page(
    conn: libvirt.virConnect,
) -> None:
    model = _model(conn, page_size=1)
    model.look(name_filter="vm")
    model.select_all()
    assert sorted(model.rows[u].name for u in model.selected) == [f"vm-{i}" for i in range(5)]
    model.look(name_filter="")
    model.select_all(False)
    assert model.selected == set()


def test_the_empty_state_names_the_filter(conn: libvirt.virConnect) -> None:
    model = _model(conn)
    assert model.empty_text() == ""
    model.look(name_filter="db", state_filter="paused")
    assert model.empty_text() == "No domain matches name containing 'db' and state paused."
    model.look(name_filter="")
    model.look(state_filter="crashed")
    assert model.empty_text() == "No domain matches state crashed."
    assert DomainTableModel().empty_text() == "No domains on this connection."


def test_changes_are_plain_data_and_deltas(conn: libvirt.virConnect) -> None:
    model = _model(conn)
    changes: list[Change] = []
    model.listen(changes.append)
    web0 = conn.lookupByName("vm-0")
    web0.create()
    model.put("vm-0", query_domain(web0))
    uuid = web0.UUIDString()
    assert changes[-1].rows == {uuid: {**changes[-1].rows[uuid], "state": "running"}}  # type: ignore[dict-item]
    with model.batch():
        model.set_state("vm-1", "paused", "user")
        model.put("vm-4", None)
    assert len(changes) == 2 and set(changes[-1].rows) == {
        conn.lookupByName("vm-1").UUIDString(),
        conn.lookupByName("vm-4").UUIDString(),
    }
    assert changes[-1].rows[conn.lookupByName("vm-4").UUIDString()] is None
    snap = model.snapshot()
    assert [r["name"] for r in snap["rows"]] == ["test", "vm-0", "vm-1", "vm-2", "vm-3"]
    assert all(isinstance(r, dict) for r in snap["rows"]) and snap["empty"] == ""


def test_a_rename_replaces_the_row_under_its_uuid(conn: libvirt.virConnect) -> None:
    model = _model(conn)
    old = next(r for r in model.rows.values() if r.name == "vm-0")
    model.put("vm-zero", replace(old, name="vm-zero"))
    assert model.uuid_of("vm-0") is None and model.uuid_of("vm-zero") == old.uuid
    assert len(model.rows) == 6


def test_domain_states_are_listed_once() -> None:
    assert DOMAIN_STATES[-1] == "nostate" and len(set(DOMAIN_STATES)) == 8
    assert {s for a in ACTIONS.values() for s in a.states} <= set(DOMAIN_STATES)
    assert isinstance(DomainRow, type)


def _seen(model: DomainTableModel) -> tuple[object, ...]:
    """What a model shows: the view, the targets, the summary, and when grouped each
    header's counts, the page's lines, the page label and the rows shown."""
    grouping = model.grouping()
    groups = (
        None
        if grouping is None
        else [(g.host, g.total, {s: n for s, n in g.counts.items() if n}, g.collapsed)
              for g in grouping.groups.values()]
    )  # fmt: skip
    lines = [
        ("#", line.host) if isinstance(line, Group) else line.key for line in model.page_lines()
    ]
    return (
        [r.key for r in model.view()],
        [r.key for r in model.targets()],
        model.summary("h"),
        groups,
        lines,
        model.page_label(),
        model.open_rows(),
        model.empty_text(),
    )


def _fresh(model: DomainTableModel) -> tuple[object, ...]:
    """What a model made now from the same rows and looks would show: what the kept view,
    patched in place, must always equal."""
    other = DomainTableModel(model.page_size)
    other.load(model.rows.values())
    other.look(
        name_filter=model.name_filter,
        state_filter=model.state_filter,
        host_filter=model.host_filter,
        sort=model.sort,
        descending=model.descending,
        group=model.group,
    )
    other.set_group_hosts(model.group_hosts)
    other.collapsed = set(model.collapsed)
    other.selected = set(model.selected)
    other.page = model.page
    return _seen(other)


def test_the_kept_view_always_equals_one_made_afresh() -> None:
    import random

    rnd = random.Random(11)
    states = list(DOMAIN_STATES[:4])
    model = DomainTableModel(5)

    def row(i: int, state: str) -> DomainRow:
        # the same name on both hosts (d000 is u0 on a and u1 on b): ties in every sort
        host = "ab"[i % 2]
        return DomainRow(f"u{i}", f"d{i // 2:03}", i, state, "x", 1, 64, False, True, host)

    model.load(row(i, rnd.choice(states)) for i in range(60))
    for step in range(3000):
        pick = rnd.random()
        i = rnd.randrange(80)
        name, host = f"d{i // 2:03}", "ab"[i % 2]
        if pick < 0.6:  # the common case: a state change of one domain
            model.set_state(name, rnd.choice(states), rnd.choice("xyz"), host)
        elif pick < 0.7:
            model.put(name, None if rnd.random() < 0.3 else row(i, rnd.choice(states)), host)
        elif pick < 0.8:
            model.look(
                name_filter=rnd.choice(["", "d0", "1", "d05"]),
                state_filter=rnd.choice(["all states", *states]),
                host_filter=rnd.choice(["", "a", "b"]),
                sort=rnd.choice(["name", "state", "reason", "id", "host"]),
                descending=rnd.random() < 0.5,
            )
        elif pick < 0.85:
            model.select(model.key_of(name, host) or "none", rnd.random() < 0.7)
        elif pick < 0.88:
            model.select_all(rnd.random() < 0.5)
        elif pick < 0.91:
            model.look(group=rnd.random() < 0.7)
        elif pick < 0.94:
            model.collapse(rnd.choice(["a", "b", "c", None]), rnd.random() < 0.5)
        elif pick < 0.96:
            model.set_group_hosts(rnd.sample("abc", rnd.randrange(4)))
        elif pick < 0.98:
            model.turn(rnd.choice([-1, 1, 3, -3]))
        elif pick < 0.99:
            model.load((row(j, rnd.choice(states)) for j in range(rnd.randrange(70))), None)
        else:  # one host read again, as a fleet does: some rows gone, some new, some changed
            some = [j for j in range(80) if "ab"[j % 2] == host and rnd.random() < 0.7]
            model.load((row(j, rnd.choice(states)) for j in some), host)
        assert _seen(model) == _fresh(model), f"step {step}"


def test_a_host_load_touches_that_host_only() -> None:
    """A fleet reads each host again every interval: a load of one host changes, adds and
    drops that host's rows only, tells the listeners exactly those, and finds the domains
    by name after; the same rows again keep the kept view (and still tell the listeners)."""

    def row(host: str, uuid: str, name: str, state: str = "running") -> DomainRow:
        return DomainRow(uuid, name, 1, state, "booted", 1, 64, False, True, host)

    model = DomainTableModel()
    changes: list[Change] = []
    model.listen(changes.append)
    model.load([row("a", "1", "web"), row("a", "2", "db")], "a")
    model.load([row("b", "1", "web"), row("b", "3", "mail")], "b")
    b_rows = {k: r for k, r in model.rows.items() if r.host == "b"}
    changes.clear()

    model.load([row("a", "1", "web", "paused"), row("a", "4", "cache")], "a")
    assert [c.rows for c in changes] == [
        {
            "a/2": None,
            "a/1": row("a", "1", "web", "paused").as_dict(),
            "a/4": row("a", "4", "cache").as_dict(),
        }
    ]
    assert all(model.rows[k] is r for k, r in b_rows.items())  # not even copied
    assert sorted(model.rows) == ["a/1", "a/4", "b/1", "b/3"]
    assert (model.key_of("db", "a"), model.key_of("cache", "a")) == (None, "a/4")
    assert (model.key_of("web", "b"), model.key_of("mail", "b")) == ("b/1", "b/3")

    model.view()
    kept = model._view
    changes.clear()
    model.load([row("a", "1", "web", "paused"), row("a", "4", "cache")], "a")
    assert [(c.rows, c.view) for c in changes] == [({}, True)]
    assert model.view() is kept  # nothing changed: not filtered and sorted again

    # the same name on two hosts: in host order, whichever host was read first
    model = DomainTableModel()
    model.load([row("b", "1", "web"), row("b", "3", "mail")], "b")
    model.load([row("a", "1", "web"), row("a", "4", "cache")], "a")
    assert [r.key for r in model.view()] == ["a/4", "b/3", "a/1", "b/1"]
    model.look(sort="vcpus", descending=True)
    assert [r.key for r in model.view()] == ["b/1", "a/1", "b/3", "a/4"]


def test_grouped_by_host_a_header_per_host_collapsible_paged() -> None:
    model = DomainTableModel(4)

    def row(host: str, i: int, state: str) -> DomainRow:
        return DomainRow(str(i), f"d{i}", i, state, "x", 1, 64, False, True, host)

    model.load([row("web", i, "running") for i in range(5)] + [row("db", 0, "shutoff")])
    model.set_group_hosts(["db", "gone", "web"])  # gone: a host with no row (failed)
    model.look(group=True)

    def page() -> list[str]:
        return [
            f"# {x.host} {x.shown}/{x.total} {x.counts}" if isinstance(x, Group) else x.key
            for x in model.page_lines()
        ]

    assert page() == [
        "# db 1/1 {'shutoff': 1}", "db/0", "# gone 0/0 {}", "# web 5/5 {'running': 5}"
    ]  # fmt: skip
    assert (model.pages, model.page_label()) == (3, "1-1 of 6 on 3 hosts")
    model.turn(1)  # a page that starts inside web's rows has web's header on top again
    assert page() == ["# web 5/5 {'running': 5}", "web/0", "web/1", "web/2", "web/3"]
    assert model.page_label() == "2-5 of 6 on 3 hosts"
    model.set_state("d1", "paused", "user", "web")  # patched into the header's counts
    assert page()[0] == "# web 5/5 {'running': 4, 'paused': 1}"
    model.collapse("web")
    assert model.page == 0 and model.pages == 1 and model.open_rows() == 1
    assert model.page_label() == "1-1 of 1 on 3 hosts, 5 folded"
    assert page() == ["# db 1/1 {'shutoff': 1}", "db/0", "# gone 0/0 {}", "# web 5/5 " + (
        "{'running': 4, 'paused': 1}")]  # fmt: skip
    model.select_all()  # a collapsed host's rows are neither selected nor acted on
    assert model.selected == {"db/0"} and [r.key for r in model.targets()] == ["db/0"]
    model.collapse(None)
    assert model.page_label() == "hosts 1-3 of 3, 6 folded" and model.open_rows() == 0
    model.collapse(None, on=False)
    model.look(name_filter="d4")  # a filter hides the hosts with nothing to show
    assert page() == ["# web 1/5 {'running': 1}", "web/4"]
    model.look(name_filter="", sort="host", descending=True)
    assert [x.host for x in model.page_lines() if isinstance(x, Group)] == ["web"]
    model.look(group=False)  # the rows as before: no header
    assert all(isinstance(x, DomainRow) for x in model.page_lines())

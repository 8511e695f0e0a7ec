"""DomainTable drawing its model, in process (no kernel): which buttons are enabled, the
empty state, the usage source."""

from __future__ import annotations

from ipyvirt.connection import Connection
from ipyvirt.models.usage import PER_DOMAIN
from ipyvirt.widgets import DomainTable, Usage

from inproc import Run, until


def test_buttons_follow_what_applies_and_the_filter(run: Run) -> None:
    conn = Connection(uri="test:///default", readonly=False)
    table = DomainTable(conn)

    def ask(do: str, **fields: object) -> None:  # what the view sends, as the comm hands it
        table._received(table, {"do": do, **fields}, [])

    async def scenario() -> None:  # on the main loop, where the view's requests are handled
        test = next(r for r in table.rows() if r.name == "test")
        assert test.state == "running"
        ask("select", uuid=test.uuid, on=True)
        assert [a for a, why in table.buttons.items() if not why] == [
            "shutdown",
            "reboot",
            "suspend",
            "destroy",
        ]
        assert table.buttons["start"] == (
            "start applies to crashed or shutoff domains: test is running"
        )
        assert table.actions.buttons["start"].tooltip == table.buttons["start"]
        ask("look", state_filter="paused")  # hides the selected domain
        assert set(table.buttons.values()) == {"select domains first"}
        assert all(b.disabled for b in table.actions.buttons.values())
        assert table.empty == "No domain matches state paused."
        assert (table.page_rows, table.pager["label"]) == ([], "")

    try:
        run(scenario())
    finally:
        table.close()
        conn.close()


def test_usage_says_where_its_numbers_came_from(run: Run) -> None:
    conn = Connection(uri="test:///default")
    usage = Usage(conn)

    async def two_polls() -> None:
        usage.poll()
        await until(lambda: usage.polls == 1, "the first poll")
        usage.poll()
        await until(lambda: usage.polls == 2, "the second poll")

    try:
        run(two_polls())
    finally:
        usage.close()
        conn.close()
    assert usage.model.sources["test"] == PER_DOMAIN
    assert usage.source == "per-domain calls, bulk stats lack cpu/memory on this driver"
    assert usage.polled and not usage.error
    (_, [(name, cpu, mem)]) = usage.model.frames[-1]  # what the view draws: figures, not n/a
    assert name == "test" and cpu is not None and mem is not None and mem > 0

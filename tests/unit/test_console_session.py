"""The console's text and errors without a guest: control sequences cut across chunks, and
the test driver, which has no consoles."""

from __future__ import annotations

import asyncio
import re

import libvirt
import pytest

from ipyvirt.models.console import ConsoleError, ConsoleSession, clean


def test_clean_drops_control_sequences_and_carriage_returns() -> None:
    assert clean("/ # \x1b[6necho hi\r\nhi\r\n") == "/ # echo hi\nhi\n"
    assert clean("\x1b]0;title\x07\x1b[1;32mgreen\x1b[0m\x07") == "green"


def test_text_and_expect_across_chunks_cut_anywhere() -> None:
    conn = libvirt.open("test:///default")
    loop = asyncio.new_event_loop()
    try:
        session = ConsoleSession(conn.lookupByName("test"), loop, scrollback=64)
        raw = "/ # \x1b[6necho h\x1b[1mé\x1b[0m\r\nhé\r\n".encode()
        for i in range(len(raw)):  # byte by byte: escapes and UTF-8 cut in every place
            session._take(raw[i : i + 1])
        assert session.text() == "/ # echo hé\nhé\n"
        assert bytes(session.raw) == raw
        match = loop.run_until_complete(session.expect("hé\n", timeout=1))
        assert match.start() == len("/ # echo ")
        # the next expect looks after the previous match
        assert loop.run_until_complete(session.expect("hé", timeout=1)).start() == 12
        session._take(b"x" * 100)  # past the scrollback: the oldest goes, both raw and text
        assert len(session.raw) == 64 and session.text() == "x" * 64
    finally:
        loop.close()
        conn.close()


def test_a_pattern_that_ends_with_the_line_waits_for_the_whole_line() -> None:
    """Output arrives in chunks, and expect searches what has come so far: ``$`` matches at
    its end too, so "4" of "42" can be taken for a whole line; ``\\n`` waits for the line's
    end (the console tutorial's answer came back as "4" in a CI run)."""
    conn = libvirt.open("test:///default")
    loop = asyncio.new_event_loop()
    try:
        session = ConsoleSession(conn.lookupByName("test"), loop, scrollback=1024)
        whole = loop.create_task(session.expect(re.compile(r"^(\d+)\n", re.M), timeout=1))
        loop.run_until_complete(asyncio.sleep(0))  # the waiter is registered
        session._take(b"echo $((6 * 7))\r\n4")
        loop.run_until_complete(asyncio.sleep(0))
        assert not whole.done()
        # what the tutorial waited for before: the line "4", at the end of what has come
        assert re.search(r"^(\d+)$", session.text(), re.M)[1] == "4"  # type: ignore[index]
        session._take(b"2\r\n/ # ")
        assert loop.run_until_complete(whole)[1] == "42"
    finally:
        loop.close()
        conn.close()


def test_the_test_driver_has_no_consoles_in_one_line() -> None:
    conn = libvirt.open("test:///default")
    loop = asyncio.new_event_loop()
    try:
        session = ConsoleSession(conn.lookupByName("test"), loop)
        with pytest.raises(ConsoleError) as raised:
            session.open()
        assert str(raised.value) == (
            "this hypervisor driver has no consoles (this function is not supported by the "
            "connection driver: virDomainOpenConsole): use a driver with serial consoles, "
            "such as qemu"
        )
        assert session.stream is None
    finally:
        loop.close()
        conn.close()

"""A real guest's serial console in a real kernel: typed into, scripted, flooded, stopped,
started again, taken over. The guest: Debian's cloud kernel and busybox under TCG
(``ipyvirt.testing.guest``), on the tests' QEMU libvirtd."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from guest import BANNER, QemuGuest
from ipyvirt.widgets.view import STATIC

from kernel import Kernel

pytestmark = [pytest.mark.qemu, pytest.mark.kernel]

# the guest boots in ~4 s on an idle machine, several times that on a busy one
BOOT_TIMEOUT = 120


def setup(guest: QemuGuest, options: str = "") -> str:
    return f"""
%load_ext ipyvirt
import re, libvirt, ipyvirt
from ipyvirt.widgets import Console
c = libvirt.open({guest.uri!r})
dom = c.lookupByName({guest.name!r})
con = Console(dom{options})
await con.expect({BANNER!r}, timeout={BOOT_TIMEOUT})
await con.expect("# ", timeout=30)
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    yield k
    k.shutdown()


def custom(
    messages: list[dict[str, Any]], comm_id: str
) -> list[tuple[dict[str, Any], list[bytes]]]:
    """What the kernel sent the widget's views, with the binary buffers of each."""
    found = []
    for m in messages:
        if m["msg_type"] != "comm_msg" or m["content"]["comm_id"] != comm_id:
            continue
        data = m["content"]["data"]
        if data.get("method") == "custom":
            found.append((data["content"], [bytes(b) for b in m.get("buffers") or []]))
    return found


def test_a_command_typed_by_a_script_is_answered(kernel: Kernel, qemu_guest: QemuGuest) -> None:
    kernel.execute(setup(qemu_guest), timeout=BOOT_TIMEOUT + 40).ok()
    reply = kernel.execute(
        'con.send("echo $((6 * 7))\\n")\n'
        'm = await con.expect(re.compile(r"^42$", re.M), timeout=10)\n'
        "print(m.group(0), '\\x1b' in con.text(), con.status)"
    ).ok()
    # the answer on a line of its own; the text has no control sequences (busybox sends
    # ESC[6n after each prompt); the shell echoed the command line as typed
    assert reply.stdout.split() == ["42", "False", "connected", "to", qemu_guest.name]
    assert "echo $((6 * 7))" in kernel.value("con.text()")
    failed = kernel.execute('await con.expect("never printed", timeout=0.5)')
    assert failed.error is not None and failed.error[0] == "TimeoutError"
    assert "'never printed' did not appear on the console" in failed.error[1]


def test_a_flood_of_output_is_coalesced_for_the_browser(
    kernel: Kernel, qemu_guest: QemuGuest
) -> None:
    kernel.execute(setup(qemu_guest), timeout=BOOT_TIMEOUT + 40).ok()
    model_id = kernel.value("con.model_id")
    kernel.send_custom(model_id, {"do": "hello", "xterm": True})
    flood = kernel.execute(
        "import asyncio\n"
        "while not con._greeted: await asyncio.sleep(0.01)\n"
        "before = con.session.received, con.session.chunks, con.messages\n"
        'con.send("yes ipyvirt-flood | head -n 3000; echo flood-done\\n")\n'
        'await con.expect(re.compile(r"^flood-done", re.M), timeout=60)\n'
        "con._coalescer.flush_now()\n"
        "print(con.session.received - before[0], con.session.chunks - before[1], "
        "con.messages - before[2])"
    ).ok()
    received, chunks, messages = map(int, flood.stdout.split())
    # the hello's answer may come before the cell starts or while it runs
    sent = custom(kernel.between + flood.messages, model_id)
    hello = [(content, data) for content, data in sent if content["kind"] == "hello"]
    out = b"".join(data[0] for content, data in sent if content["kind"] == "out")
    # the hello carried xterm.js itself, then the scrollback (the banner)
    assert len(hello) == 1
    content, (xterm, scrollback) = hello[0]
    assert content == {"kind": "hello", "xterm": True, "scrollback": True}
    assert xterm == (STATIC / "vendor" / "xterm.mjs").read_bytes()
    assert BANNER.encode() in scrollback
    assert received > 3000 * len("ipyvirt-flood\r\n")
    # every byte reached the views, in fewer messages than the stream gave reads
    assert out.count(b"ipyvirt-flood\r\n") == 3000
    assert 0 < messages < chunks, (messages, chunks)


def test_a_stopped_guest_says_so_and_its_console_comes_back(
    kernel: Kernel, qemu_guest: QemuGuest
) -> None:
    kernel.execute(setup(qemu_guest, ", reconnect=True"), timeout=BOOT_TIMEOUT + 40).ok()
    kernel.execute(
        "import asyncio\n"
        "dom.destroy()\n"
        "for _ in range(1000):\n"
        "    if con.status == 'disconnected: domain stopped': break\n"
        "    await asyncio.sleep(0.01)\n"
        "print(con.status)"
    ).ok()
    assert kernel.value("con.status") == "disconnected: domain stopped"
    sent = kernel.execute("try:\n    con.send('x')\nexcept Exception as e:\n    print(e)").ok()
    assert "nothing to type into" in sent.stdout
    kernel.execute(
        "dom.create()\n"
        f"await con.expect({BANNER!r}, timeout={BOOT_TIMEOUT})\n"
        'await con.expect("# ", timeout=30)\n'
        'con.send("echo back-$((1 + 1))\\n")\n'
        'await con.expect("back-2", timeout=10)',
        timeout=BOOT_TIMEOUT + 60,
    ).ok()
    assert kernel.value("con.status") == f"connected to {qemu_guest.name}"


def test_a_held_console_names_force_and_force_takes_it(
    kernel: Kernel, qemu_guest: QemuGuest
) -> None:
    kernel.execute(setup(qemu_guest), timeout=BOOT_TIMEOUT + 40).ok()
    held = kernel.execute("Console(dom)")
    assert held.error is not None and held.error[0] == "ConsoleError"
    assert held.error[1] == (
        f"another client holds the console of {qemu_guest.name}: open it with --force "
        "(force=True) to take it over"
    )
    kernel.execute(f"vc = %virt connect {qemu_guest.uri} --rw").ok()
    refused = kernel.execute(f"%virt console {qemu_guest.name}")
    assert refused.status == "error"
    assert (
        f"%virt console: another client holds the console of {qemu_guest.name}: open it "
        "with --force" in refused.stderr
    )
    kernel.execute(
        "import asyncio\n"
        f"con2 = %virt console {qemu_guest.name} --force\n"
        "for _ in range(1000):\n"
        "    if not con.session.connected: break\n"
        "    await asyncio.sleep(0.01)\n"
        'con2.send("echo taken-$((2 + 1))\\n")\n'
        'await con2.expect("taken-3", timeout=10)'
    ).ok()
    assert kernel.value("con.status").startswith("disconnected: ")


def test_closing_frees_the_stream_its_callback_and_the_console(
    kernel: Kernel, qemu_guest: QemuGuest
) -> None:
    kernel.execute(setup(qemu_guest), timeout=BOOT_TIMEOUT + 40).ok()
    kernel.execute(
        "from ipyvirt import runtime\n"
        "impl = runtime.current().impl\n"
        "con.close()\n"
        "await impl.drain()\n"
        "after_close = impl.statistics()\n"
        "again = Console(dom)\n"  # no --force needed: the console is free
        "await impl.drain()\n"
        "with_one = impl.statistics()\n"
        "again.close()\n"
        "await impl.drain()\n"
        "after_again = impl.statistics()"
    ).ok()
    counts = kernel.value(
        "[(len(s.watches), len(s.timers)) for s in (after_close, with_one, after_again)]"
    )
    # an open console adds libvirt's stream timer (and the widget's event connection);
    # closed, the process is back where it was
    assert counts[0] == counts[2], counts
    assert counts[1] != counts[0], counts
    assert kernel.value("(con.session.stream, again.session.stream)") == (None, None)

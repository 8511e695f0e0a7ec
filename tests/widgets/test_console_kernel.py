"""%virt console where there is no console to open: each a one-line UsageError saying why
(a real guest's console: tests/daemon/test_console.py)."""

from __future__ import annotations

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel


def test_virt_console_says_in_one_line_why_it_cannot_open() -> None:
    k = Kernel()
    try:
        k.execute("%load_ext ipyvirt\nc = %virt connect --rw").ok()
        cases = {
            "%virt console test": (
                "%virt console: this hypervisor driver has no consoles (this function is not "
                "supported by the connection driver: virDomainOpenConsole): use a driver with "
                "serial consoles, such as qemu"
            ),
            "%virt console nope": "%virt console: no domain named 'nope' on test:///default",
            "%virt connect test:///default --name ro\n%virt console test --name ro": (
                "%virt console: the console of test needs a read-write connection: "
                "%virt connect URI --rw (libvirt.open, not openReadOnly)"
            ),
            "%virt console": "%virt console: the following arguments are required: DOMAIN",
        }
        for line, said in cases.items():
            reply = k.execute(line)
            assert reply.status == "error", line
            assert said in reply.stderr, (line, reply.stderr)
            assert len(reply.stderr.strip().splitlines()) == 1, reply.stderr
    finally:
        k.shutdown()

"""The base of ipyvirt's one-comm widgets (widgets/view.py) in a real kernel."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version

import pytest

from kernel import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext ipyvirt
import asyncio, threading, libvirt, traitlets
from ipyvirt.widgets.view import View

class Probe(View):
    _esm = "export default { render({ model, el }) { el.textContent = model.get('n'); } }"
    n = traitlets.Int(0).tag(sync=True)

    def __init__(self, conn=None):
        super().__init__()
        self._live(conn)
        self.seen = []
        self.closings = 0

    def _handle(self, do, content):
        self.seen.append((do, threading.current_thread().name))
        self.n += 1

    def _closing(self):
        self.closings += 1

async def until(check):
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 2 s")
"""


@pytest.fixture
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    k.execute(SETUP).ok()
    yield k
    k.shutdown()


def comm_opens(kernel: Kernel, code: str) -> int:
    reply = kernel.execute(code).ok()
    return sum(1 for m in reply.messages if m["msg_type"] == "comm_open")


def test_a_view_is_one_comm(kernel: Kernel) -> None:
    # no Layout widget (a comm of its own) unless the user gives one
    assert comm_opens(kernel, "a = Probe()\ndisplay(a)") == 1
    assert kernel.value("a.layout") is None
    given = "import ipywidgets\nb = Probe()\nb.layout = ipywidgets.Layout()"
    assert comm_opens(kernel, given) == 2  # the view, and the Layout the user gave it


def test_requests_are_handled_on_the_main_thread_in_order(kernel: Kernel) -> None:
    kernel.execute("p = Probe()\ndisplay(p)").ok()
    model_id = kernel.value("p.model_id")
    for i in range(5):
        kernel.send_custom(model_id, {"do": f"step{i}"})
    kernel.send_custom(model_id, {"not": "a request"})  # ignored: no "do"
    kernel.execute("await until(lambda: len(p.seen) == 5)").ok()
    assert kernel.value("p.seen") == [(f"step{i}", "MainThread") for i in range(5)]


def test_a_request_over_a_subshell_is_handled_on_the_main_thread(kernel: Kernel) -> None:
    if not kernel.supports("kernel subshells"):
        pytest.skip(f"ipykernel {version('ipykernel')} has no subshells (ipykernel 7 has)")
    kernel.execute("p = Probe()\ndisplay(p)").ok()
    subshell = kernel.create_subshell()
    kernel.send_custom(kernel.value("p.model_id"), {"do": "poke"}, subshell_id=subshell)
    kernel.execute("await until(lambda: p.seen)").ok()
    assert kernel.value("p.seen") == [("poke", "MainThread")]


def test_a_view_closes_once_with_its_connection_and_on_unload(kernel: Kernel) -> None:
    kernel.execute(
        "from ipyvirt import Connection\n"
        "conn = Connection(libvirt.open('test:///default'))\n"
        "on_conn = Probe(conn)\nalone = Probe()\non_conn_id = on_conn.model_id\n"
        "conn.close()\n"
        "await until(lambda: on_conn.comm is None)"
    ).ok()
    kernel.execute("on_conn.close()").ok()
    assert kernel.value("(on_conn.closings, alone.closings, alone.comm is None)") == (1, 0, False)
    kernel.execute("%unload_ext ipyvirt").ok()
    assert kernel.value("(alone.closings, alone.comm is None)") == (1, True)
    model_id = kernel.value("on_conn_id")
    kernel.send_custom(model_id, {"do": "late"})  # a closed view's comm is gone: nothing runs
    kernel.execute("await asyncio.sleep(0.1)").ok()
    assert kernel.value("on_conn.seen") == []

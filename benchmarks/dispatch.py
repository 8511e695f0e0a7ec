"""fd dispatch cost: one byte ping-ponged through a socketpair, one callback per dispatch.

Each implementation runs in a process of its own (libvirt takes one registration per
process), all in one run, so the ratios compare like with like:

- raw asyncio: ``loop.add_reader`` with a plain Python callback, the floor;
- libvirt default: ``virEventRegisterDefaultImpl`` + ``virEventRunDefaultImpl`` (C poll);
- libvirtaio: libvirt-python's asyncio adapter;
- ipyvirt: ``AsyncioEventImpl(loop)``, registered: the default, fd watches on an io thread
  of its own that waits on the watches' epoll set itself;
- ipyvirt, start(): as ``ipyvirt.start()`` (and so a kernel) runs it, the same split;
- ipyvirt, one loop: ``AsyncioEventImpl(loop, io_loop=loop)``, fd watches on the loop;

all of them through ``libvirt.virEventAddHandle``, so the callback goes through libvirt's
C trampoline as it does for libvirt's own sockets.

Two more rows explain the difference between one-loop mode and raw asyncio:

- raw asyncio, nested epoll: the floor of ipyvirt's design, an epoll set of our own read by
  ``add_reader`` and asked for each fd's real condition (``epoll.poll(0)``), nothing else;
- ipyvirt, one loop, direct: ``add_handle`` with the Python callback, no trampoline.
 Usage: ``python benchmarks/dispatch.py
[--dispatches N] [--repeats R] [--markdown]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

IMPLS = [
    "raw asyncio",
    "raw asyncio, nested epoll",
    "libvirt default",
    "libvirtaio",
    "ipyvirt",
    "ipyvirt, start()",
    "ipyvirt, one loop",
    "ipyvirt, one loop, direct",
]


def _pingpong(n: int) -> tuple[socket.socket, socket.socket, list[int], Callable[..., None]]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    count = [0]

    def on_readable(*_: Any) -> None:
        a.recv(1)
        count[0] += 1
        if count[0] < n:
            b.send(b"x")  # makes a readable again: the next dispatch

    return a, b, count, on_readable


def measure(impl: str, n: int) -> float:
    """Seconds per dispatch for *impl*, in this process."""
    import libvirt

    a, b, count, cb = _pingpong(n)
    if impl == "libvirt default":
        libvirt.virEventRegisterDefaultImpl()
        libvirt.virEventAddHandle(a.fileno(), libvirt.VIR_EVENT_HANDLE_READABLE, cb, None)
        start = time.perf_counter()
        b.send(b"x")
        while count[0] < n:
            libvirt.virEventRunDefaultImpl()
        return (time.perf_counter() - start) / n
    if impl == "ipyvirt, start()":
        import threading

        import ipyvirt

        done = threading.Event()

        def last(*args: Any) -> None:
            cb(*args)
            if count[0] >= n:
                done.set()

        ipyvirt.start()  # as in a kernel: fd watches on the ipyvirt-io IoThread
        libvirt.virEventAddHandle(a.fileno(), libvirt.VIR_EVENT_HANDLE_READABLE, last, None)
        start = time.perf_counter()
        b.send(b"x")
        done.wait()
        return (time.perf_counter() - start) / n

    loop = asyncio.new_event_loop()
    if impl == "raw asyncio":
        loop.add_reader(a.fileno(), cb)
    elif impl == "raw asyncio, nested epoll":
        import select

        ep = select.epoll()
        ep.register(a.fileno(), select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP)

        def nested() -> None:
            for _fd, _revents in ep.poll(0, 64):
                cb()

        loop.add_reader(ep.fileno(), nested)
    elif impl == "ipyvirt, one loop, direct":
        import ipyvirt

        ipyvirt.AsyncioEventImpl(loop, io_loop=loop).add_handle(a.fileno(), 1, cb, None, None)
    else:
        if impl == "libvirtaio":
            import libvirtaio

            libvirtaio.virEventRegisterAsyncIOImpl(loop)
        elif impl == "ipyvirt, one loop":
            import ipyvirt

            ipyvirt.AsyncioEventImpl(loop, io_loop=loop).register()
        else:  # the default: fd watches on an io thread of the implementation's own
            import ipyvirt

            ipyvirt.AsyncioEventImpl(loop).register()
        libvirt.virEventAddHandle(a.fileno(), libvirt.VIR_EVENT_HANDLE_READABLE, cb, None)

    async def run() -> float:
        start = time.perf_counter()
        b.send(b"x")
        while count[0] < n:
            await asyncio.sleep(0.001)
        return time.perf_counter() - start

    return loop.run_until_complete(run()) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dispatches", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.dispatches)))
        return
    runs: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(args.repeats):  # interleaved, so drift in the machine hits all alike
        for impl in IMPLS:
            cmd = [sys.executable, __file__, "--one", impl, "--dispatches", str(args.dispatches)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[impl].append(json.loads(out))
    median = {impl: statistics.median(v) * 1e6 for impl, v in runs.items()}
    floor = median["raw asyncio"]
    rows = [(impl, median[impl], median[impl] / floor) for impl in IMPLS]
    if args.markdown:
        print("| implementation | µs per dispatch | vs raw asyncio |")
        print("|---|---:|---:|")
        for impl, us, ratio in rows:
            print(f"| {impl} | {us:.2f} | {ratio:.2f}x |")
    else:
        print(f"{'implementation':26} {'µs/dispatch':>12} {'vs raw':>8}")
        for impl, us, ratio in rows:
            print(f"{impl:26} {us:12.2f} {ratio:7.2f}x")
    print(
        f"\n{args.dispatches} dispatches x {args.repeats} runs each (median); "
        "ipyvirt / libvirtaio: "
        + ", ".join(
            f"{impl} {median[impl] / median['libvirtaio']:.2f}"
            for impl in ("ipyvirt", "ipyvirt, start()", "ipyvirt, one loop")
        )
    )


if __name__ == "__main__":
    main()

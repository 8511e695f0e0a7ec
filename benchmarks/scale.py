"""DomainTable at 10 / 100 / 1,000 / 5,000 domains, in a real kernel.

For each size, a fresh kernel (jupyter_client, ``%load_ext ipyvirt``) defines the domains on
``test:///default`` with ``defineXML`` (``test`` plus ``d0000``...; ``d0000`` running, so a
domain on the first page can be suspended) and then measures:

- first render (median of 3 tables, each closed before the next): ``DomainTable(c)`` then
  ``display(t)``, timed in the kernel
  (``perf_counter``; the comm_open messages are handed to the IOPub thread by then), and as
  the client sees it (execute_request sent until its last comm_open and display_data arrived);
  what that first render sends (comm_open messages, bytes);
- comm bytes per event: the JSON content of every ``comm_msg`` the kernel sends for one
  lifecycle event (a suspend) of a domain shown on the page (``d0000``), and of a domain on
  another page (``test``, sorted last; with 10 domains everything is on the one page);
- one refresh: the kernel time of ``t._show()`` (filter, sort, page, compare), which a burst
  of events costs at most 20 times a second;
- the kernel's memory (VmRSS) with the domains defined, and what the table added.

Usage: ``python benchmarks/scale.py [--sizes 10,100,1000,5000] [--markdown]``.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import time
from typing import Any

from _common import KernelProcess, comm_bytes, print_table

SETUP = """
%load_ext ipyvirt
import gc, re, time, libvirt
from ipyvirt.widgets import DomainTable
c = libvirt.open("test:///default")
_xml = re.sub(r"<uuid>.*</uuid>", "", c.lookupByName("test").XMLDesc())
for _i in range({n} - 1):
    c.defineXML(re.sub(r"<name>.*</name>", f"<name>d{{_i:04}}</name>", _xml))
if {n} > 1:
    c.lookupByName("d0000").create()
gc.collect()
"""

RENDER = """
_t0 = time.perf_counter()
t = DomainTable(c)
display(t)
_render = time.perf_counter() - _t0
"""

REFRESH = """
_t0 = time.perf_counter()
for _ in range(5):
    t._show()
print(repr((time.perf_counter() - _t0) / 5))
"""


def event_bytes(kp: KernelProcess, name: str) -> tuple[int, int]:
    """(comm_msg count, bytes) the kernel sends for one suspend of domain *name*."""
    kp.k.drain(0.3)
    before = len(kp.k.between)
    reply = kp.k.execute(f"c.lookupByName({name!r}).suspend()").ok()
    kp.k.drain(0.5)  # the table refreshes within its 50 ms coalescing interval
    msgs = [m for m in (*reply.messages, *kp.k.between[before:]) if m["msg_type"] == "comm_msg"]
    kp.k.execute(f"c.lookupByName({name!r}).resume()").ok()
    kp.k.drain(0.3)
    return len(msgs), comm_bytes(msgs)


def render(kp: KernelProcess) -> tuple[float, float, list[dict[str, Any]]]:
    """A new table shown: (kernel s, client s, its comm_open messages)."""
    start = time.monotonic()
    reply = kp.k.execute(RENDER).ok()
    client = time.monotonic() - start
    opens = [m for m in reply.messages if m["msg_type"] == "comm_open"]
    return float(kp.k.value("_render")), client, opens


def measure(n: int) -> dict[str, Any]:
    with KernelProcess() as kp:
        kp.k.execute(SETUP.format(n=n), timeout=600).ok()
        rss_domains = kp.rss_mib()
        renders = [render(kp)]
        kp.k.drain(0.5)
        rss_table = kp.rss_mib()
        shown = event_bytes(kp, "d0000" if n > 1 else "test")
        other = event_bytes(kp, "test") if n > 25 else None
        refresh = float(ast.literal_eval(kp.k.execute(REFRESH).ok().stdout))
        for _ in range(2):
            kp.k.execute("t.close()").ok()
            renders.append(render(kp))
        kp.k.execute("t.close()").ok()
    opens = renders[0][2]
    return {
        "n": n,
        "render": statistics.median(r[0] for r in renders),
        "client": statistics.median(r[1] for r in renders),
        "opens": len(opens),
        "open_bytes": comm_bytes(opens, "comm_open"),
        "shown": shown,
        "other": other,
        "refresh": refresh,
        "rss_domains": rss_domains,
        "rss_table": rss_table - rss_domains,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    results = [measure(int(n)) for n in args.sizes.split(",")]
    rows = []
    for r in results:
        other = f"{r['other'][1]} ({r['other'][0]} msg)" if r["other"] else "- (one page)"
        rows.append(
            (
                f"{r['n']:,}",
                f"{r['render'] * 1e3:.0f}",
                f"{r['client'] * 1e3:.0f}",
                f"{r['opens']} / {r['open_bytes'] / 1024:.1f} KiB",
                f"{r['shown'][1]} ({r['shown'][0]} msg)",
                other,
                f"{r['refresh'] * 1e3:.2f}",
                f"{r['rss_domains']:.0f}",
                f"{r['rss_table']:+.1f}",
            )
        )
    headers = (
        "domains",
        "first render ms (kernel)",
        "ms (client)",
        "comm_open / bytes",
        "bytes/event, shown",
        "bytes/event, other page",
        "one refresh ms",
        "RSS MiB",
        "table RSS MiB",
    )
    print_table(headers, rows, args.markdown)
    shown = [r["shown"][1] for r in results]
    other = [r["other"][1] for r in results if r["other"]]
    spread = max(shown) - min(shown)
    spread_other = max(other) - min(other) if other else 0
    independent = spread <= 0.1 * max(shown) and spread_other <= 0.1 * max(other or [1])
    print(
        f"\nTarget: bytes per event independent of the number of domains: shown "
        f"{min(shown)}-{max(shown)} B, other page "
        f"{min(other or [0])}-{max(other or [0])} B ({'met' if independent else 'MISSED'}; "
        "the differences are digits in the counts the summary line shows)."
    )


if __name__ == "__main__":
    main()

"""Run every benchmark and write their figures to benchmarks/README.md.

Usage: ``python benchmarks/report.py [--output PATH]`` (about 7 minutes on 2 cores). It runs
dispatch.py, latency.py, storm.py, scale.py, screen.py and explore.py one after another with
``--markdown``, and notes the machine and its load average around each: the figures are only
as quiet as the machine was.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, title, what it measures)
BENCHMARKS = [
    (
        "dispatch.py",
        "fd dispatch cost",
        "One byte ping-ponged through a socketpair, one callback per dispatch; one process "
        "per implementation, medians of 5 runs of 100,000 dispatches.",
    ),
    (
        "latency.py",
        "cross-thread latency",
        "A worker thread suspends/resumes a domain; time until the lifecycle callback runs, "
        "with the asyncio loop otherwise idle. One process per implementation. Target: "
        "ipyvirt p99 <= 5 ms.",
    ),
    (
        "storm.py",
        "event storm into a kernel",
        "Another process suspends/resumes 4 domains on a libvirtd of our own at 10,000 "
        "events/s for 10 s; a kernel shows a Dashboard of that daemon and runs a trivial cell "
        "every 0.1 s. Targets: cell p99 <= 50 ms, <= 20 comm messages/s per widget, no event "
        "lost.",
    ),
    (
        "scale.py",
        "DomainTable at scale",
        "A fresh kernel per size; domains defined on test:///default. Target: comm bytes per "
        "event independent of the number of domains.",
    ),
    (
        "screen.py",
        "event to screen through the DomainTable",
        "A libvirtd of our own per size, its domains defined and started over its socket; "
        "JupyterLab in Chromium shows a DomainTable of it; this process suspends/resumes a "
        "domain on the first page, one change at a time, each after the previous one showed; "
        "a MutationObserver in the page stamps the state badge's change. Target: 10,000 "
        "domains p50 <= 30 ms, max <= 100 ms.",
    ),
    (
        "explore.py",
        "the explorer on a big host",
        "A libvirtd of our own with 1,000 domains, 100 networks and 50 pools of 100 volumes, "
        "made over its socket. In a kernel: Explorer() until the domain table's first page is "
        "sent, and each other tab from its first showing until its data is sent; the bytes a "
        "part got before it was shown. In JupyterLab + Chromium: this process stops/starts a "
        "network, stops/starts a pool, creates/destroys a vHBA node device, one change at a "
        "time, each after the previous one showed; a MutationObserver in the page stamps the "
        "tab's change. Targets: first render <= 300 ms kernel-side, no comm traffic for parts "
        "not shown, event to screen p50 <= 50 ms.",
    ),
]


def machine() -> list[tuple[str, str]]:
    import libvirt

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    lib = libvirt.getVersion()
    daemon = subprocess.run(["libvirtd", "--version"], capture_output=True, text=True, check=False)
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("libvirt-python", "ipykernel", "ipywidgets", "jupyter_client")
    )
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("OS", f"{platform.system()} {platform.release()} ({_os_name()})"),
        ("Python", platform.python_version()),
        (
            "libvirt",
            f"{lib // 1_000_000}.{lib // 1000 % 1000}.{lib % 1000} (library); "
            f"{daemon.stdout.strip() or 'no libvirtd'}",
        ),
        ("packages", versions),
    ]


def _os_name() -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "unknown"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(script: str) -> tuple[str, float, str, str]:
    """(markdown output, seconds, load average before, after) of one benchmark."""
    before = _load()
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(HERE / script), "--markdown"],
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - start
    out = done.stdout.strip()
    if done.returncode != 0:
        out += f"\n\n**{script} failed** (exit {done.returncode}):\n\n```\n"
        out += done.stderr.strip()[-2000:] + "\n```"
    return out, took, before, _load()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=HERE / "README.md")
    args = parser.parse_args()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sections = []
    total = 0.0
    for script, title, what in BENCHMARKS:
        print(f"running {script} ...", file=sys.stderr, flush=True)
        out, took, before, after = run(script)
        total += took
        sections.append(
            f"## {title}: `{script}`\n\n{what}\n\n{out}\n\n"
            f"*{took:.0f} s; load average {before} before, {after} after.*\n"
        )
    facts = "\n".join(f"| {k} | {v} |" for k, v in machine())
    text = f"""# Benchmarks

Speed is shown side by side in one run (ratios, the same machine at the same time), never by
timed asserts in tests. Every script prints a table (`--markdown` for this file) and can be
run on its own; `--help` lists its options. This file is written by one command:

```sh
.venv/bin/python benchmarks/report.py      # runs all six, ~7 minutes; needs root (libvirtd)
```

Latest run: {began}, {total:.0f} s in all, on:

| | |
|---|---|
{facts}

The machine is shared: the load average around each benchmark is noted under it; cell
latencies and the storm's rate suffer most from other load.

{chr(10).join(sections)}"""
    args.output.write_text(text)
    print(f"wrote {args.output} ({total:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()

"""``python -m ipyvirt.testing [MODULE:FACTORY] [--mode M ...] [--daemon-uri URI]
[--guest NAME --guest-uri URI] [--json]``."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import subprocess
import sys
from dataclasses import asdict
from typing import Any

from ipyvirt.testing import ClauseResult, clauses_for, run_conformance


def _load(spec: str) -> Any:
    module, sep, name = spec.partition(":")
    if not sep:
        raise SystemExit(f"{spec!r}: name the factory as module:callable")
    return getattr(importlib.import_module(module), name)


def _isolated(
    factory: str,
    modes: list[str],
    daemon_uri: str | None,
    guest: tuple[str, str] | None,
    only: list[str] | None,
) -> list[ClauseResult]:
    results = []
    for mode in modes:
        for clause in clauses_for(mode):
            if only and clause.name not in only:
                continue
            cmd = [sys.executable, "-m", "ipyvirt.testing", factory, "--json"]
            cmd += ["--mode", mode, "--clause", clause.name]
            if daemon_uri:
                cmd += ["--daemon-uri", daemon_uri]
            if guest:
                cmd += ["--guest-uri", guest[0], "--guest", guest[1]]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            try:
                results += [ClauseResult(**r) for r in json.loads(run.stdout)]
            except ValueError:
                tail = (run.stderr.strip().splitlines() or ["no output"])[-1]
                results.append(ClauseResult(clause.name, mode, False, f"crashed: {tail}", 0.0))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipyvirt.testing",
        description="Run the libvirt event loop contract against an implementation.",
    )
    parser.add_argument(
        "factory",
        nargs="?",
        default="ipyvirt:AsyncioEventImpl",
        help="module:callable taking an asyncio loop, returning an EventImpl "
        "(default: ipyvirt:AsyncioEventImpl)",
    )
    parser.add_argument(
        "--mode",
        action="append",
        choices=["direct", "libvirt", "daemon", "guest"],
        help="which modes to run (repeatable; default direct and libvirt, plus daemon "
        "when --daemon-uri is given and guest when --guest is)",
    )
    parser.add_argument("--daemon-uri", help="a libvirtd URI, e.g. test+unix:///default?socket=P")
    parser.add_argument(
        "--guest",
        metavar="NAME",
        help="a running QEMU domain whose serial console runs a shell, for the guest clauses "
        "(ipyvirt.testing.guest.start_guest makes one)",
    )
    parser.add_argument("--guest-uri", help="the guest's hypervisor, e.g. qemu:///system")
    parser.add_argument("--clause", action="append", help="run only this clause (repeatable)")
    parser.add_argument(
        "--isolate",
        action="store_true",
        help="run each clause in a process of its own, so one broken clause cannot spoil "
        "the state the next one starts from",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--verbose", action="store_true", help="show the log (the kit makes callbacks raise)"
    )
    args = parser.parse_args(argv)
    if bool(args.guest) != bool(args.guest_uri):
        parser.error("--guest NAME and --guest-uri URI go together")
    guest = (args.guest_uri, args.guest) if args.guest else None
    modes = args.mode or ["direct", "libvirt"]
    if not args.mode:
        modes += (["daemon"] if args.daemon_uri else []) + (["guest"] if guest else [])
    if not args.verbose:  # the kit makes callbacks raise on purpose: tracebacks are noise
        logging.disable(logging.CRITICAL)
    if args.isolate:
        results = _isolated(args.factory, modes, args.daemon_uri, guest, args.clause)
    else:
        results = run_conformance(
            _load(args.factory),
            modes=modes,
            daemon_uri=args.daemon_uri,
            guest=guest,
            only=args.clause,
        )
    if args.json:
        json.dump([asdict(r) for r in results], sys.stdout, indent=1)
        print()
    else:
        for r in results:
            print(f"{'pass' if r.passed else 'FAIL'}  {r.id:40} {r.detail}")
        failed = sum(not r.passed for r in results)
        print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if any(not r.passed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

"""A short soak: scripts/soak.py for 30 s must report adds == frees and caused == received."""
# QEMU is left to the full soak (scripts/soak.py --qemu): the machine has one QEMU driver, and
# tests/daemon holds it for the session.

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).parents[2] / "scripts" / "soak.py"


def test_short_soak() -> None:
    run = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "30"], capture_output=True, text=True, timeout=300
    )
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "soak: OK"
    for line in lines[:2]:
        caused = int(line.split("events caused ")[1].split(",")[0])
        assert caused > 1000, line  # the soak did something
        assert line.endswith(f"received {caused} (libvirt's own callback: {caused})"), line

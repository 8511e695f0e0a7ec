"""The project's host preparation, scripts/prepare-host, for the tests: run, or loaded.

ipyvirt's Libvirtd changes nothing on the machine; it names what is missing. The tests run
scripts/prepare-host themselves only where this run may change the host: in CI (CI=true), or
as root under scripts/test (which sets IPYVIRT_PREPARE_HOST=1). Anywhere else a daemon that
lacks something fails with that one line, and you run the script (or not) yourself.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "prepare-host"


def may_prepare() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("IPYVIRT_PREPARE_HOST") == "1"


@functools.cache
def prepare(part: str) -> None:
    """``scripts/prepare-host --PART`` once per session, where this run may change the host."""
    if not may_prepare():
        return
    done = subprocess.run([str(SCRIPT), f"--{part}"], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"scripts/prepare-host --{part} failed: {done.stderr.strip()}")


def load_script() -> ModuleType:
    """scripts/prepare-host as a module, to test its parts without running it."""
    loader = importlib.machinery.SourceFileLoader("prepare_host", str(SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None, "a SourceFileLoader always makes a spec"
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module

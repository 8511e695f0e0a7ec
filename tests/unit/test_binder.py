"""binder/ installs what pyproject.toml declares: the same dependencies, pinned within its ranges.

postBuild installs ipyvirt with ``--no-deps``, so binder/requirements.txt alone decides the
runtime dependencies on Binder; these tests keep the two files from drifting apart.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def _lines(path: Path) -> list[str]:
    """The non-empty lines of *path*, comments removed (as pip and repo2docker read them)."""
    lines = (line.partition("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def _project() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        project: dict[str, Any] = tomllib.load(f)["project"]
    return project


def _by_name(requirements: list[str]) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in requirements]
    return {canonicalize_name(r.name): r for r in parsed}


def declared() -> dict[str, Requirement]:
    """pyproject.toml's runtime dependencies, the "lab" extra Binder runs them in, and the
    "analysis" extra tutorial 06 plots with."""
    project = _project()
    extras = project["optional-dependencies"]
    return _by_name([*project["dependencies"], *extras["lab"], *extras["analysis"]])


def pinned() -> dict[str, Requirement]:
    return _by_name(_lines(BINDER / "requirements.txt"))


def test_binder_installs_every_dependency_and_nothing_else() -> None:
    assert sorted(pinned()) == sorted(declared())


@pytest.mark.parametrize("name", sorted(declared()))
def test_each_pin_is_exact_and_within_the_declared_range(name: str) -> None:
    pin = pinned()[name]
    specs = list(pin.specifier)
    assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
        f"binder/requirements.txt: pin {name} to one exact version (name==X.Y.Z), not {pin}"
    )
    version = specs[0].version
    allowed = declared()[name].specifier
    assert allowed.contains(version, prereleases=True), (
        f"binder/requirements.txt pins {name}=={version}, outside pyproject.toml's {allowed}"
    )


def test_apt_has_what_libvirt_python_builds_with() -> None:
    assert {"libvirt-dev", "pkg-config", "gcc"} <= set(_lines(BINDER / "apt.txt"))


def test_post_build_installs_ipyvirt_without_resolving_dependencies() -> None:
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    commands = [line.split() for line in _lines(post_build) if "pip" in line.split()]
    assert any(
        "install" in words and "--no-deps" in words and words[-1] == "." for words in commands
    ), commands

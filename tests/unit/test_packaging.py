"""The sdist and the wheel as PyPI would get them: built without a warning, clean for
``twine check --strict``, licensed, and the wheel holds the library and nothing else.

They are built from a copy of this checkout (so that no build output lands in it), without
build isolation: the venv's setuptools must satisfy ``[build-system] requires`` (build
checks), and nothing is downloaded.
"""

from __future__ import annotations

import email
import email.message
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import ipyvirt

REPO = Path(__file__).resolve().parents[2]
VERSION = ipyvirt.__version__
# caches, venvs and build output: not the project's sources
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "build",
    "dist",
    "test-artifacts",
    ".ipynb_checkpoints",
)
# how a program that changes the machine would be run from Python: as an argv's first word
HOST_CHANGES = ('"apt-get"', '"useradd"', '"groupadd"', '"usermod"', '".orig"')


@dataclass(frozen=True)
class Built:
    output: str
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    tmp = tmp_path_factory.mktemp("packaging")
    tree = tmp / "ipyvirt"
    shutil.copytree(REPO, tree, ignore=NOT_SOURCES, symlinks=True)
    # without it setuptools warns that it skips byte-compiling (and the wheel is the same)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    command = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "dist")]
    done = subprocess.run(
        [*command, str(tree)], env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return Built(
        output,
        tmp / "dist" / f"ipyvirt-{VERSION}.tar.gz",
        tmp / "dist" / f"ipyvirt-{VERSION}-py3-none-any.whl",
    )


def wheel_metadata(built: Built) -> email.message.Message:
    with zipfile.ZipFile(built.wheel) as wheel:
        text = wheel.read(f"ipyvirt-{VERSION}.dist-info/METADATA").decode()
    return email.message_from_string(text)


def test_the_build_warns_of_nothing(built: Built) -> None:
    # setuptools' deprecations (a license table, License classifiers) print as warnings
    noted = [line for line in built.output.splitlines() if re.search(r"warn|deprecat", line, re.I)]
    assert noted == []


def test_twine_check_strict_passes(built: Built) -> None:
    command = [
        sys.executable,
        "-m",
        "twine",
        "check",
        "--strict",
        str(built.sdist),
        str(built.wheel),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_both_carry_the_license(built: Built) -> None:
    license = (REPO / "LICENSE").read_bytes()
    assert b"GNU LESSER GENERAL PUBLIC LICENSE\n                       Version 2.1" in license
    with tarfile.open(built.sdist) as sdist:
        member = sdist.extractfile(f"ipyvirt-{VERSION}/LICENSE")
        assert member is not None
        assert member.read() == license
    with zipfile.ZipFile(built.wheel) as wheel:
        assert wheel.read(f"ipyvirt-{VERSION}.dist-info/licenses/LICENSE") == license
    metadata = wheel_metadata(built)
    assert metadata["License-Expression"] == "LGPL-2.1-or-later"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_the_metadata_says_what_pypi_shows(built: Built) -> None:
    metadata = wheel_metadata(built)
    assert metadata["Version"] == VERSION == importlib.metadata.version("ipyvirt")
    assert metadata["Description-Content-Type"] == "text/markdown"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL", []))
    assert urls["Source"] == "https://github.com/ipyvirt/ipyvirt"
    classifiers = metadata.get_all("Classifier", [])
    for wanted in ("Framework :: Jupyter", "Typing :: Typed", "Operating System :: POSIX :: Linux"):
        assert wanted in classifiers
    versions = [c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r".*:: 3\.\d+", c)]
    assert versions == ["3.10", "3.11", "3.12", "3.13"]


def test_the_readme_links_only_absolute_urls() -> None:
    # PyPI renders the README without the repository: a relative link or image breaks there
    targets = re.findall(r"\]\(([^)\s]+)", (REPO / "README.md").read_text())
    assert targets
    assert [t for t in targets if not t.startswith(("https://", "#"))] == []


def test_the_wheel_holds_the_library_only(built: Built) -> None:
    with zipfile.ZipFile(built.wheel) as wheel:
        names = wheel.namelist()
        sources = {n: wheel.read(n).decode() for n in names if n.endswith(".py")}
    assert [
        n for n in names if not n.startswith(("ipyvirt/", f"ipyvirt-{VERSION}.dist-info/"))
    ] == []
    assert [n for n in names if re.search(r"(^|/)(tests?|conftest)\b|/test_[^/]*\.py$", n)] == []
    assert "ipyvirt/py.typed" in names
    changes = {n: [w for w in HOST_CHANGES if w in text] for n, text in sources.items()}
    assert {n: found for n, found in changes.items() if found} == {}


def test_the_wheel_imports_without_ipython(built: Built, tmp_path: Path) -> None:
    # tests/unit/test_exports.py pins this for the checkout; here for the wheel as built
    with zipfile.ZipFile(built.wheel) as wheel:
        wheel.extractall(tmp_path)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import ipyvirt; "
        "print(ipyvirt.__file__); "
        "print(sorted(m for m in ('IPython', 'ipywidgets') if m in sys.modules))"
    )
    command = [sys.executable, "-c", code, str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    file, imported = done.stdout.splitlines()
    assert Path(file).is_relative_to(tmp_path)
    assert imported == "[]"

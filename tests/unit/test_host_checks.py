"""Libvirtd installs nothing: on a machine that lacks a part, it says in one line what, and
which script prepares the host.

The machine here has every part (CI prepares it), so each test runs a daemon in a process
whose PATH holds only getent: the programs that show a package is installed are not found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

START = """
import sys
from ipyvirt.testing.libvirtd import Libvirtd, LibvirtdUnavailable
daemon = Libvirtd(dir=sys.argv[1], {args})
try:
    daemon.start()
except LibvirtdUnavailable as e:
    print(e)
finally:
    daemon.cleanup()
"""


def start_without_programs(tmp_path: Path, args: str) -> str:
    """What ``Libvirtd(**args).start()`` says where only getent is on PATH."""
    bin = tmp_path / "bin"
    bin.mkdir()
    getent = shutil.which("getent")
    assert getent is not None, "libc-bin is essential on Debian"
    (bin / "getent").symlink_to(getent)
    env = dict(os.environ, PATH=str(bin))
    command = [sys.executable, "-c", START.format(args=args), str(tmp_path / "d")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="Libvirtd checks the host as root only")
def test_qemu_names_the_packages_and_the_script(tmp_path: Path) -> None:
    said = start_without_programs(tmp_path, "qemu=True")
    # a fresh machine lacks more (the driver, accounts, qemu.conf): those follow the packages
    assert said.startswith("Libvirtd(qemu=True) needs packages qemu-system-x86 libvirt-clients")
    assert said.endswith(
        ": scripts/prepare-host --qemu in ipyvirt's source tree installs and sets them "
        "(run it as root)\n"
    )
    assert said.count("\n") == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="Libvirtd checks the host as root only")
def test_sasl_names_the_packages_and_the_script(tmp_path: Path) -> None:
    said = start_without_programs(tmp_path, "sasl=('alice', 'secret')")
    assert said.startswith("Libvirtd(sasl=...) needs packages sasl2-bin")
    assert "apt-get install --no-install-recommends sasl2-bin" in said
    assert said.endswith("or run scripts/prepare-host --sasl (as root) in ipyvirt's source tree\n")
    assert said.count("\n") == 1


SERVER = """
import sys
from ipyvirt.testing.{module} import {cls}
try:
    {cls}(sys.argv[1]).{start}()
except RuntimeError as e:
    print(e)
"""


def server_without_programs(tmp_path: Path, module: str, cls: str, start: str) -> str:
    """What ``CLS(dir).START()`` says where only getent is on PATH."""
    code = SERVER.format(module=module, cls=cls, start=start)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")],
        env=dict(os.environ, PATH=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_sshd_names_the_packages_and_the_script(tmp_path: Path) -> None:
    said = server_without_programs(tmp_path, "sshd", "Sshd", "start")
    # sshd itself is found by its full path: the programs on PATH are missing
    assert said.startswith("Sshd needs packages openssh-client netcat-openbsd"), said
    assert said.endswith(
        ": scripts/prepare-host --ssh in ipyvirt's source tree installs and makes them "
        "(run it as root)\n"
    )
    assert said.count("\n") == 1


def test_pki_names_the_package_and_the_script(tmp_path: Path) -> None:
    said = server_without_programs(tmp_path, "pki", "Pki", "make")
    assert said == (
        "Pki needs packages gnutls-bin: scripts/prepare-host --tls in ipyvirt's source tree "
        "installs it (run it as root)\n"
    )

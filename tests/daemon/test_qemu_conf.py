"""/etc/libvirt/qemu.conf: scripts/prepare-host edits it (idempotent, every other line kept,
one backup); ipyvirt.testing.host only reads it, for the settings the script sets."""

from __future__ import annotations

import stat
from pathlib import Path

from ipyvirt.testing.host import QEMU_SETTINGS, unset_settings
from ipyvirt.testing.qemu import minimal_domain_xml

import host

prepare_host = host.load_script()
edit_conf = prepare_host.edit_conf
set_conf = prepare_host.set_conf

DEBIAN_LIKE = """\
# Master configuration file for the QEMU driver.
#user = "libvirt-qemu"
#group = "libvirt-qemu"
vnc_listen = "0.0.0.0"
group = "kvm"
#stdio_handler = "logd"
"""


def test_edit_sets_active_lines_and_keeps_the_rest() -> None:
    edited = edit_conf(DEBIAN_LIKE, QEMU_SETTINGS)
    lines = edited.splitlines()
    assert lines[:4] == DEBIAN_LIKE.splitlines()[:4]  # comments stay comments
    assert lines[4] == 'group = "root"'  # replaced where it was
    assert lines[5] == '#stdio_handler = "logd"'
    assert lines[-2:] == ['user = "root"', 'stdio_handler = "file"']
    assert edit_conf(edited, QEMU_SETTINGS) == edited


def test_the_script_sets_what_the_package_checks() -> None:
    assert prepare_host.QEMU_SETTINGS == QEMU_SETTINGS
    assert unset_settings(DEBIAN_LIKE) == QEMU_SETTINGS
    assert unset_settings(edit_conf(DEBIAN_LIKE, QEMU_SETTINGS)) == {}


def test_every_active_line_of_a_key_is_set() -> None:
    # libvirt reads the last: a first one set alone would not count
    edited = edit_conf('user = "a"\nuser = "b"\n', QEMU_SETTINGS)
    assert edited.splitlines()[:2] == ['user = "root"', 'user = "root"']
    assert unset_settings(edited) == {}
    assert unset_settings('user = "root"\nuser = "b"\n') == QEMU_SETTINGS


def test_set_conf_backs_up_once(tmp_path: Path) -> None:
    conf = tmp_path / "qemu.conf"
    conf.write_text(DEBIAN_LIKE)
    assert set_conf(conf, QEMU_SETTINGS)
    assert not set_conf(conf, QEMU_SETTINGS)
    backup = tmp_path / "qemu.conf.orig"
    assert backup.read_text() == DEBIAN_LIKE
    assert set_conf(conf, {"user": '"nobody"'})
    assert backup.read_text() == DEBIAN_LIKE  # the first original, not the last


def test_set_conf_creates_a_private_file(tmp_path: Path) -> None:
    conf = tmp_path / "libvirt" / "qemu.conf"
    assert set_conf(conf, QEMU_SETTINGS)
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    assert not (conf.parent / "qemu.conf.orig").exists()
    assert set(conf.read_text().splitlines()) >= {'user = "root"', 'stdio_handler = "file"'}


def test_the_domain_xml_escapes_its_name() -> None:
    assert "<name>a&amp;b&lt;c</name>" in minimal_domain_xml("a&b<c")

"""What a :class:`~ipyvirt.testing.libvirtd.Libvirtd` needs from the machine: looked at, never
changed.

ipyvirt installs no package, adds no account and edits no file outside a daemon's own dir:
a library that users import must not change their system. When something is missing,
:func:`qemu_needs` and :func:`sasl_needs` say what, and :data:`PREPARE` names the script in
ipyvirt's source tree that prepares a Debian-like host (as root, run explicitly; ipyvirt's own
test command runs it in CI).
"""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

from ipyvirt.testing.qemu import driver_path

__all__ = [
    "PREPARE",
    "QEMU_CONF",
    "QEMU_SETTINGS",
    "qemu_needs",
    "sasl_needs",
    "ssh_needs",
    "tls_needs",
]

#: the script in ipyvirt's source tree that installs and sets what is missing
PREPARE = "scripts/prepare-host"
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
#: what /etc/libvirt/qemu.conf must say. A root daemon's guests run as root (no /dev/kvm or
#: file ownership to arrange), and write their stdio to plain files: the default needs
#: virtlogd, and start-up then takes 4.4 s, not 0.35 s. scripts/prepare-host sets the same.
QEMU_SETTINGS = {"user": '"root"', "group": '"root"', "stdio_handler": '"file"'}
# package: the program that shows it is installed (virsh destroys guests, waits for QEMU)
QEMU_PROGRAMS = {"qemu-system-x86": "qemu-system-x86_64", "libvirt-clients": "virsh"}
# the accounts libvirt-daemon-system's postinst adds; the QEMU driver needs them to load
QEMU_ACCOUNTS = (("group", "kvm"), ("passwd", "libvirt-qemu"), ("group", "libvirt-qemu"))
#: Cyrus SASL's plugin for SCRAM-SHA-256 (package libsasl2-modules)
SASL_PLUGIN = "libscram.so"
# package: the program that shows it is installed (nc: the remote helper, with -U)
SSH_PROGRAMS = {
    "openssh-server": "/usr/sbin/sshd",
    "openssh-client": "ssh-keygen",
    "netcat-openbsd": "nc",
}
#: sshd's privilege separation dir: compiled in, made by the system's service at start
SSHD_RUN_DIR = Path("/run/sshd")


def qemu_needs() -> list[str]:
    """What this machine lacks for ``Libvirtd(qemu=True)``, each a phrase; [] when ready.

    Reads /etc/libvirt/qemu.conf, which is root's alone: call it as root.
    """
    needs = []
    packages = missing_qemu_packages()
    if packages:
        needs.append(f"packages {' '.join(packages)}")
    accounts = [name for database, name in QEMU_ACCOUNTS if not _exists(database, name)]
    if accounts:
        needs.append(f"the accounts libvirt-daemon-system adds ({', '.join(accounts)})")
    unset = unset_settings(QEMU_CONF.read_text() if QEMU_CONF.exists() else "")
    if unset:
        lines = ", ".join(f"{key} = {value}" for key, value in unset.items())
        needs.append(f"{lines} in {QEMU_CONF}")
    return needs


def sasl_needs() -> list[str]:
    """The packages this machine lacks for ``Libvirtd(sasl=...)``; [] when ready."""
    missing = [] if shutil.which("saslpasswd2") else ["sasl2-bin"]
    if not glob.glob(f"/usr/lib/*/sasl2/{SASL_PLUGIN}*"):
        missing.append("libsasl2-modules")
    return missing


def ssh_needs() -> list[str]:
    """What this machine lacks for :class:`ipyvirt.testing.sshd.Sshd`; [] when ready."""
    needs = []
    packages = [pkg for pkg, program in SSH_PROGRAMS.items() if not shutil.which(program)]
    if packages:
        needs.append(f"packages {' '.join(packages)}")
    if not SSHD_RUN_DIR.is_dir():
        needs.append(f"the directory {SSHD_RUN_DIR} (sshd's, made when its service starts)")
    return needs


def tls_needs() -> list[str]:
    """The packages this machine lacks for :class:`ipyvirt.testing.pki.Pki`; [] when ready."""
    return [] if shutil.which("certtool") else ["gnutls-bin"]


def missing_qemu_packages() -> list[str]:
    missing = [pkg for pkg, program in QEMU_PROGRAMS.items() if not shutil.which(program)]
    if driver_path() is None:
        missing.append("libvirt-daemon-driver-qemu")
    return missing


def unset_settings(conf: str, settings: dict[str, str] = QEMU_SETTINGS) -> dict[str, str]:
    """Those of *settings* that libvirt config text *conf* does not set to their value."""
    active = {}
    for line in conf.splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            active[key.strip()] = value.strip()
    return {key: value for key, value in settings.items() if active.get(key) != value}


def _exists(database: str, key: str) -> bool:
    return subprocess.run(["getent", database, key], capture_output=True).returncode == 0

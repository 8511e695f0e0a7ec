"""A real Linux guest under TCG, for tests and tutorials: Debian's cloud kernel and a busybox
initramfs.

It boots in about 4 s without KVM, prints a banner on its serial console and runs a shell
there, so a console, a screenshot or a shutdown from inside the guest can be tried for
real::

    from ipyvirt.testing.guest import build_guest, start_guest
    guest = start_guest("qemu+unix:///system?socket=...", build_guest())
    ...
    guest.remove()

:func:`build_guest` is the only part that fetches anything, and only when called: it runs
``apt-get download`` for the kernel and busybox packages and unpacks them with ``dpkg-deb
-x`` into a cache directory (``~/.cache/ipyvirt/guest``); nothing is installed, the machine
is not changed. The initramfs is written here (a newc cpio, gzip) without a ``cpio`` tool.
Importing ipyvirt, or this module, runs no apt tool.

ipyvirt's own tests use it through the fixtures ``guest_image`` and ``qemu_guest`` in
``tests/conftest.py``; ``notebooks/09-a-guest-console.ipynb`` starts one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import libvirt

from ipyvirt.errors import IpyvirtError

__all__ = [
    "BANNER",
    "GuestImage",
    "GuestUnavailable",
    "QemuGuest",
    "build_guest",
    "guest_xml",
    "start_guest",
]

#: what the guest prints on its console once its shell is about to start
BANNER = "ipyvirt test guest ready"

KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"

# /init: mount what a shell wants, say so, and keep a shell on the console for ever (exit
# or a killed shell gives a new one). cttyhack makes the console the shell's controlling
# terminal, so ^C works; setsid gives it a session to own.
INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "{BANNER}" > /dev/console
echo "{BANNER}: its shell is on the serial console (ttyS0)" > /dev/tty0
while true; do setsid cttyhack sh; done
"""


class GuestUnavailable(IpyvirtError):
    """The guest's parts could not be fetched (no apt, no archive): says what to do."""


@dataclass(frozen=True)
class GuestImage:
    """A bootable kernel and initramfs on disk."""

    kernel: Path
    initrd: Path


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ipyvirt" / "guest"


def build_guest(cache: Path | None = None) -> GuestImage:
    """The guest's kernel and initramfs, built into *cache* (default
    ``~/.cache/ipyvirt/guest``) once and reused after. The first call downloads two Debian
    packages with ``apt-get download`` (about 1 s) and installs nothing; it needs a
    Debian-like host whose apt knows Debian's main archive, else :class:`GuestUnavailable`
    says what is missing."""
    cache = cache or default_cache()
    # named after what /init says, so a changed /init gets an initramfs of its own
    version = hashlib.sha256(INIT.encode()).hexdigest()[:12]
    kernel, initrd = cache / "vmlinuz", cache / f"initrd-{version}.gz"
    if kernel.exists() and initrd.exists():
        return GuestImage(kernel, initrd)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        package = _kernel_package()
        _run(["apt-get", "download", "-o", "APT::Sandbox::User=root", package, BUSYBOX], work)
        unpacked = work / "root"
        for deb in work.glob("*.deb"):
            _run(["dpkg-deb", "-x", str(deb), str(unpacked)], work)
        vmlinuz = sorted((unpacked / "boot").glob("vmlinuz-*"))
        busybox = unpacked / "bin" / "busybox"
        if not vmlinuz or not busybox.exists():
            raise GuestUnavailable(f"{package} or {BUSYBOX} did not unpack as expected")
        # written under temporary names and renamed: a run killed midway leaves no half file
        shutil.copyfile(vmlinuz[-1], work / "vmlinuz")
        (work / "initrd.gz").write_bytes(initramfs(busybox.read_bytes()))
        os.replace(work / "initrd.gz", initrd)
        os.replace(work / "vmlinuz", kernel)
    return GuestImage(kernel, initrd)


def _kernel_package() -> str:
    """The versioned kernel package the meta-package depends on (the meta-package holds no
    kernel itself)."""
    out = _run(["apt-cache", "depends", KERNEL_META], Path("."))
    for line in out.splitlines():
        words = line.split()
        if words[:1] == ["Depends:"] and words[1].startswith("linux-image-"):
            return words[1]
    raise GuestUnavailable(
        f"apt knows no {KERNEL_META}: add Debian's main archive to apt's sources, apt-get update"
    )


def _run(argv: list[str], cwd: Path) -> str:
    if shutil.which(argv[0]) is None:
        raise GuestUnavailable(
            f"{argv[0]} is missing: the test guest is built on Debian-like hosts"
        )
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GuestUnavailable(f"{' '.join(argv[:3])} failed: {last}")
    return done.stdout


def initramfs(busybox: bytes) -> bytes:
    """A gzipped newc cpio archive: /init, /bin/busybox and the directories they need."""
    entries: list[tuple[str, int, bytes]] = [
        (d, 0o040755, b"") for d in ("bin", "dev", "proc", "sys", "tmp", "root")
    ]
    entries.append(("bin/busybox", 0o100755, busybox))
    entries.append(("init", 0o100755, INIT.encode()))
    out = bytearray()
    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        out += _cpio_entry(ino, name, mode, data)
    return gzip.compress(bytes(out), compresslevel=6, mtime=0)


def _cpio_entry(ino: int, name: str, mode: int, data: bytes) -> bytes:
    encoded = name.encode() + b"\0"
    nlink = 2 if mode & 0o040000 else 1
    fields = [ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
    header = b"070701" + b"".join(f"{f:08X}".encode() for f in fields)
    entry = header + encoded
    entry += b"\0" * (-len(entry) % 4)  # the name, then the data, each padded to 4 bytes
    return entry + data + b"\0" * (-len(data) % 4)


def guest_xml(name: str, image: GuestImage, *, video: bool = True, memory_mib: int = 128) -> str:
    """A TCG guest booting *image* directly, its shell on a serial console (``ttyS0``);
    with *video* a VGA card, so that ``virDomainScreenshot`` has a screen (720x400 text)."""
    video_xml = "<video><model type='vga'/></video>" if video else ""
    return (
        "<domain type='qemu'>"
        f"<name>{escape(name)}</name>"
        f"<memory unit='MiB'>{memory_mib}</memory>"
        "<vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type>"
        f"<kernel>{escape(str(image.kernel))}</kernel>"
        f"<initrd>{escape(str(image.initrd))}</initrd>"
        "<cmdline>console=ttyS0 quiet</cmdline></os>"
        "<devices><serial type='pty'/><console type='pty'/>"
        f"{video_xml}<memballoon model='none'/></devices>"
        "</domain>"
    )


@dataclass(frozen=True)
class QemuGuest:
    """A running guest defined on a QEMU libvirtd: its name, URI and XML."""

    name: str
    uri: str
    xml: str

    def remove(self) -> None:
        """Stop the guest if it runs and undefine it (gone for good)."""
        conn = libvirt.open(self.uri)
        try:
            dom = conn.lookupByName(self.name)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
        finally:
            conn.close()
        # the QEMU driver's log of the guest, where it keeps one (stdio_handler = "file")
        try:
            Path(f"/var/log/libvirt/qemu/{self.name}.log").unlink(missing_ok=True)
        except OSError:
            pass


def start_guest(uri: str, image: GuestImage, *, video: bool = True) -> QemuGuest:
    """Define a persistent guest booting *image* on the QEMU hypervisor at *uri* (so a
    stopped one can start again) and start it; :meth:`QemuGuest.remove` ends it. Its name is
    ``ipyvirt-guest-`` and 8 random hex digits. It answers on its console about 4 s later
    (several times that on a busy machine)."""
    name = f"ipyvirt-guest-{uuid.uuid4().hex[:8]}"
    xml = guest_xml(name, image, video=video)
    conn = libvirt.open(uri)
    try:
        dom = conn.defineXML(xml)
        try:
            dom.create()
        except libvirt.libvirtError:
            dom.undefine()
            raise
    finally:
        conn.close()
    return QemuGuest(name, uri, xml)

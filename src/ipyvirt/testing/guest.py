"""A real Linux guest under TCG, for tests and tutorials: Debian's cloud kernel and a busybox
initramfs.

It boots in about 4 s without KVM, prints a banner on its serial console and runs a shell
there, so a console, a screenshot or a shutdown from inside the guest can be tried for
real::

    from ipyvirt.testing.guest import guest_image, start_guest
    guest = start_guest("qemu+unix:///system?socket=...", guest_image())
    ...
    guest.remove()

The package fetches nothing: ``scripts/guest-image`` (in a checkout; the tests' fixture does
the same) runs ``apt-get download`` for Debian's cloud kernel and busybox-static, unpacks
them with ``dpkg-deb -x`` and hands them to :func:`write_image`, which writes the initramfs
(a newc cpio, gzip, without a ``cpio`` tool) into ``~/.cache/ipyvirt/guest``; nothing is
installed, the machine is not changed. :func:`guest_image` finds them there.

ipyvirt's own tests use it through the fixtures ``guest_image`` and ``qemu_guest`` in
``tests/conftest.py``; ``notebooks/09-a-guest-console.ipynb`` starts one.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
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
    "guest_image",
    "guest_xml",
    "image_paths",
    "start_guest",
    "write_image",
]

#: what the guest prints on its console once its shell is about to start
BANNER = "ipyvirt test guest ready"

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
    """The guest's kernel and initramfs are not there, or could not be fetched: the message
    says what to do."""


@dataclass(frozen=True)
class GuestImage:
    """A bootable kernel and initramfs on disk."""

    kernel: Path
    initrd: Path


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ipyvirt" / "guest"


def image_paths(cache: Path | None = None) -> GuestImage:
    """Where the guest's kernel and initramfs live in *cache* (default
    ``~/.cache/ipyvirt/guest``), there or not; the initramfs is named after what ``/init``
    says, so a changed ``/init`` gets one of its own."""
    cache = cache or default_cache()
    version = hashlib.sha256(INIT.encode()).hexdigest()[:12]
    return GuestImage(cache / "vmlinuz", cache / f"initrd-{version}.gz")


def guest_image(cache: Path | None = None) -> GuestImage:
    """The guest's kernel and initramfs, as ``scripts/guest-image`` left them in *cache*;
    :class:`GuestUnavailable`, saying how to make them, when they are not there."""
    image = image_paths(cache)
    if image.kernel.exists() and image.initrd.exists():
        return image
    raise GuestUnavailable(
        f"no test guest in {image.kernel.parent}: make it once with scripts/guest-image "
        "(a Debian kernel and busybox, fetched with apt-get download; nothing is installed)"
    )


def write_image(vmlinuz: Path, busybox: bytes, cache: Path | None = None) -> GuestImage:
    """Put kernel *vmlinuz* and an initramfs around *busybox* (a static binary) into
    *cache*; written under temporary names and renamed, so a run killed midway leaves no
    half file."""
    image = image_paths(cache)
    image.kernel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=image.kernel.parent) as tmp:
        work = Path(tmp)
        shutil.copyfile(vmlinuz, work / "vmlinuz")
        (work / "initrd.gz").write_bytes(initramfs(busybox))
        os.replace(work / "initrd.gz", image.initrd)
        os.replace(work / "vmlinuz", image.kernel)
    return image


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

"""The test guest (``ipyvirt.testing.guest``) fetched, and on the tests' QEMU libvirtd.

:func:`build_guest` fetches its parts: Debian's cloud kernel and busybox-static with ``apt-get
download``, unpacked with ``dpkg-deb -x`` in a temporary dir (nothing is installed), then
written into the cache by ``ipyvirt.testing.guest.write_image``. It lives here, not in the
package, which runs no apt tool; ``scripts/guest-image`` runs it for a checkout
(``python tests/guest.py``). The fixtures in ``tests/conftest.py`` use these.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import libvirt

from ipyvirt.testing.guest import (
    BANNER,
    GuestImage,
    GuestUnavailable,
    QemuGuest,
    guest_xml,
    image_paths,
    start_guest,
    write_image,
)
from ipyvirt.testing.libvirtd import Libvirtd

__all__ = [
    "BANNER",
    "GuestImage",
    "GuestUnavailable",
    "QemuGuest",
    "build_guest",
    "defined_guest",
    "guest_xml",
]

KERNEL_META = "linux-image-cloud-amd64"
BUSYBOX = "busybox-static"


def build_guest(cache: Path | None = None) -> GuestImage:
    """The guest's kernel and initramfs, fetched and built into *cache* once, reused after."""
    image = image_paths(cache)
    if image.kernel.exists() and image.initrd.exists():
        return image
    image.kernel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=image.kernel.parent) as tmp:
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
        return write_image(vmlinuz[-1], busybox.read_bytes(), cache)


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


def defined_guest(daemon: Libvirtd, image: GuestImage) -> Iterator[QemuGuest]:
    """A persistent guest (so a stopped one can start again), started; gone after."""
    guest = start_guest(daemon.qemu_uri, image)
    try:
        yield guest
    finally:
        guest.remove()


class PacedDump:
    """A core dump of a running guest (``virDomainCoreDump``, not memory-only) into a FIFO
    that the test reads: QEMU writes only as fast as :meth:`take` reads, so the job lasts
    until the test lets it end, with no timing. libvirt runs such a dump as a migration to a
    file (``doCoreDump`` -> ``qemuMigrationSrcToFile``), which lifts any bandwidth limit
    (``migrateSetMaxSpeed`` cannot slow it) and emits VIR_DOMAIN_EVENT_ID_JOB_COMPLETED when
    QEMU is done (``qemuDomainEventEmitJobCompleted`` in src/qemu/qemu_migration.c)."""

    def __init__(self, uri: str, name: str, directory: Path) -> None:
        path = directory / f"{name}.core"
        os.mkfifo(path, 0o600)
        # the read end first, not blocking: libvirt's open of the write end then does not block
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.total = 0
        self._conn = libvirt.open(uri)
        self._failed: list[BaseException] = []
        dom = self._conn.lookupByName(name)
        self._job = threading.Thread(target=self._dump, args=(dom, str(path)), name="core-dump")

    def _dump(self, dom: libvirt.virDomain, path: str) -> None:
        try:
            dom.coreDump(path, 0)
        except BaseException as err:  # raised by finish()
            self._failed.append(err)

    def start(self) -> None:
        self._job.start()

    def take(self, count: int | None) -> None:
        """Read *count* bytes more of the dump (None: to its end)."""
        goal = None if count is None else self.total + count
        writer_seen = self.total > 0
        while goal is None or self.total < goal:
            ready, _, _ = select.select([self.fd], [], [], 0.5)
            if not ready:
                assert self._job.is_alive(), f"the dump ended early: {self._failed}"
                continue
            chunk = os.read(self.fd, 65536 if goal is None else min(65536, goal - self.total))
            if not chunk:  # no writer yet (libvirt has not opened it), or the end
                if writer_seen or not self._job.is_alive():
                    return
                select.select([], [], [], 0.05)
                continue
            writer_seen = True
            self.total += len(chunk)

    def finish(self) -> None:
        """Read the rest, wait for libvirt's call to return; its error, if any, raised."""
        if self._job.is_alive():
            self.take(None)
            self._job.join(120)
        assert not self._job.is_alive(), "the dump did not end"
        if self._failed:
            raise self._failed[0]

    def close(self) -> None:
        """Let a dump still running end (read to its end), then release everything."""
        try:
            if self._job.is_alive():
                self.take(None)
                self._job.join(120)
        finally:
            os.close(self.fd)
            self._conn.close()


if __name__ == "__main__":  # scripts/guest-image
    try:
        built = build_guest()
    except GuestUnavailable as err:
        sys.exit(f"guest-image: {err}")
    print(f"kernel={built.kernel}\ninitrd={built.initrd}")

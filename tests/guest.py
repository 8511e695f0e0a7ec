"""The test guest (``ipyvirt.testing.guest``) fetched, and on the tests' QEMU libvirtd.

:func:`build_guest` fetches its parts: Debian's cloud kernel and busybox-static with ``apt-get
download``, unpacked with ``dpkg-deb -x`` in a temporary dir (nothing is installed), then
written into the cache by ``ipyvirt.testing.guest.write_image``. It lives here, not in the
package, which runs no apt tool; ``scripts/guest-image`` runs it for a checkout
(``python tests/guest.py``). The fixtures in ``tests/conftest.py`` use these.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


if __name__ == "__main__":  # scripts/guest-image
    try:
        built = build_guest()
    except GuestUnavailable as err:
        sys.exit(f"guest-image: {err}")
    print(f"kernel={built.kernel}\ninitrd={built.initrd}")

"""A domain's screen as a PNG, read through a libvirt stream (``virDomainScreenshot``).

libvirt hands the image over a stream in the hypervisor's format: PNG from the test driver
(a fixed 1120x832 picture) and from QEMU 7.1 and later (a guest's VGA text mode is
720x400). Another format is named in one line rather than converted: no dependency is
needed for what these drivers give. The read blocks (RPCs and a stream read to its end):
callers run it off the main loop (:class:`~ipyvirt.models.offloop.OffLoop`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import libvirt

from ipyvirt.errors import IpyvirtError

__all__ = ["NoScreen", "NoScreenshots", "Screenshot", "ScreenshotError", "screenshot"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ScreenshotError(IpyvirtError):
    """The screen could not be read; the message says why."""


class NoScreen(ScreenshotError):
    """The domain has no screen (no video device, or it is not running)."""


class NoScreenshots(ScreenshotError):
    """The connection's driver takes no screenshots (libvirt: "not supported")."""


@dataclass(frozen=True)
class Screenshot:
    """One picture of a screen."""

    png: bytes
    width: int
    height: int

    def _repr_png_(self) -> bytes:
        return self.png

    def __repr__(self) -> str:
        return f"Screenshot({self.width}x{self.height} PNG, {len(self.png)} bytes)"


def screenshot(dom: libvirt.virDomain, screen: int = 0) -> Screenshot:
    """Screen *screen* of *dom* as a PNG; :class:`NoScreen` if it has none (blocks)."""
    name = dom.name()
    stream = dom.connect().newStream(0)
    try:
        mime = dom.screenshot(stream, screen)
    except libvirt.libvirtError as err:
        message = err.get_error_message() or str(err)
        if "no screens" in message or err.get_error_code() == libvirt.VIR_ERR_OPERATION_INVALID:
            raise NoScreen(f"no screen on {name} ({message})") from None
        if err.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            raise NoScreenshots(f"no screenshots of {name}: {message}") from None
        raise ScreenshotError(f"cannot take a screenshot of {name}: {message}") from None
    chunks = []
    try:
        while True:
            data = stream.recv(256 * 1024)
            if not isinstance(data, bytes) or not data:
                break
            chunks.append(data)
        stream.finish()
    except libvirt.libvirtError as err:
        stream.abort()
        raise ScreenshotError(
            f"the screenshot of {name} was cut short: {err.get_error_message()}"
        ) from None
    png = b"".join(chunks)
    if mime != "image/png" or not png.startswith(PNG_SIGNATURE):
        raise ScreenshotError(
            f"the screenshot of {name} is {mime}, not PNG: ipyvirt shows PNG only"
        )
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk comes first
    return Screenshot(png, width, height)

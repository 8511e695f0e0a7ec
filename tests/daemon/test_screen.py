"""A real QEMU guest's screen: a VGA card gives a 720x400 PNG through a stream; a guest
without one has "no screen", in the Screen widget and in the domain table's thumbnails."""

from __future__ import annotations

import struct

import pytest

from guest import GuestImage, QemuGuest, guest_xml

from kernel import Kernel

pytestmark = [pytest.mark.qemu, pytest.mark.kernel]


def test_a_guests_screen_and_a_guest_without_one(
    qemu_guest: QemuGuest, guest_image: GuestImage
) -> None:
    headless = guest_xml(qemu_guest.name + "-headless", guest_image, video=False)
    k = Kernel()
    try:
        k.execute(
            "%load_ext ipyvirt\n"
            "import asyncio, libvirt\n"
            "from ipyvirt.widgets import Screen\n"
            "from ipyvirt.models.screen import NoScreen, screenshot\n"
            f"c = libvirt.open({qemu_guest.uri!r})\n"
            f"dom = c.lookupByName({qemu_guest.name!r})\n"
            f"headless = c.createXML({headless!r})\n"
            "shot = screenshot(dom)\n"
            "try:\n"
            "    screenshot(headless)\n"
            "except NoScreen as e:\n"
            "    said = str(e)\n"
            "scr = Screen(headless)\n"
        ).ok()
        png = k.execute("print(shot.png.hex())").ok().stdout.strip()
        data = bytes.fromhex(png)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack(">II", data[16:24]) == (720, 400)
        assert k.value("said") == (
            f"no screen on {qemu_guest.name}-headless (Requested operation is not valid: "
            "no screens to take screenshot from)"
        )
        k.send_custom(k.value("scr.model_id"), {"do": "hello"})
        k.execute(
            "for _ in range(3000):\n    if scr.status: break\n    await asyncio.sleep(0.01)\n"
        ).ok()
        assert k.value("scr.status") == "no screen"

        # the table's thumbnails: the guest's picture, the headless guest's word
        k.execute("from ipyvirt.widgets import DomainTable\nt = DomainTable(c, thumbnails=1)").ok()
        table = k.value("t.model_id")
        k.send_custom(table, {"do": "thumbs", "fresh": True})
        asked = k.execute(
            "for _ in range(3000):\n"
            "    if t._thumbs.sent >= 2 and t.settled: break\n"
            "    await asyncio.sleep(0.01)\n"
            "print(t._thumbs.sent)"
        ).ok()
        sent = [
            m
            for m in k.between + asked.messages
            if m["msg_type"] == "comm_msg"
            and m["content"]["comm_id"] == table
            and m["content"]["data"].get("method") == "custom"
        ]
        content = {}
        for m in sent:  # the two rows may come in one message or two
            got = m["content"]["data"]["content"]
            content.setdefault("shots", []).extend(got["shots"])
            content.setdefault("words", {}).update(got["words"])
        key = k.value("dom.UUIDString()")
        headless_key = k.value("headless.UUIDString()")
        assert [shot for shot in content["shots"] if shot[0] == key] == [[key, 720, 400]]
        assert content["words"][headless_key][0] == "no screen"
        k.execute("t.close()").ok()
        k.execute("scr.close()\nheadless.destroy()").ok()
    finally:
        k.shutdown()

"""What a domain table's thumbnail column shows, and when each row's picture is read again.

A row has a picture only while its domain runs or is paused (a shut-off domain has no
screen to read). A picture is read at most once per *interval* for each row, and only while
a view watches (the view asks every *interval* while it is on screen and its page visible:
a closed browser stops asking, so nothing here can be left reading for nobody). A row whose
screen cannot be read shows a short word ("no screen", "no screenshots"), read again every
*recheck* seconds only: a guest gains a video device by a restart, not from one poll to the
next. Each picture goes to the views once per change (its digest), never twice the same.

Plain data and rules, no loop and no widget: the clock is the caller's (tests give it).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import libvirt

from ipyvirt.models.screen import NoScreen, NoScreenshots, ScreenshotError, screenshot

__all__ = ["THUMB_STATES", "Thumb", "ThumbSchedule", "message", "read_thumb", "read_thumbs"]

log = logging.getLogger("ipyvirt")

#: the states whose domains have a screen to read
THUMB_STATES = frozenset({"running", "paused"})


@dataclass(frozen=True)
class Thumb:
    """One row's picture (a PNG, *word* "") or the short word shown instead of one."""

    png: bytes = b""
    width: int = 0
    height: int = 0
    #: a digest of the PNG: the same picture is not sent twice
    digest: bytes = b""
    word: str = ""
    #: why there is no picture, one line (the word's tooltip)
    why: str = ""


def read_thumb(dom: libvirt.virDomain) -> Thumb:
    """*dom*'s screen 0 as a :class:`Thumb` (blocks: an RPC and a stream read)."""
    try:
        shot = screenshot(dom)
    except NoScreen as err:
        return Thumb(word="no screen", why=str(err))
    except NoScreenshots as err:
        return Thumb(word="no screenshots", why=str(err))
    except ScreenshotError as err:
        # libvirt takes a screenshot for a write: a read-only connection is refused
        word = "read-only" if "read only" in str(err) else "unreadable"
        return Thumb(word=word, why=str(err))
    digest = hashlib.blake2b(shot.png, digest_size=16).digest()
    return Thumb(shot.png, shot.width, shot.height, digest)


def read_thumbs(conn: libvirt.virConnect, uuids: Mapping[str, str]) -> dict[str, Thumb]:
    """The pictures of the domains *uuids* names (by row key) on *conn*, one after the
    other (blocks: off the loop). *conn* must be read-write: a table's rows come from a
    read-only connection, whose handles libvirt refuses a screenshot."""
    found = {}
    for key, uuid in uuids.items():
        try:
            dom = conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as err:  # it went between the page and the read
            found[key] = Thumb(word="gone", why=err.get_error_message() or str(err))
        else:
            found[key] = read_thumb(dom)
    return found


class ThumbSchedule:
    """The thumbnail column's state: which rows want a picture, what the views hold, when
    each row is due; every method takes the time (``time.monotonic()``) from the caller."""

    def __init__(self, interval: float, recheck: float = 30.0) -> None:
        self.interval = interval
        self.recheck = recheck
        #: the keys of the page's rows that may have a picture (running or paused)
        self.wanted: frozenset[str] = frozenset()
        #: what the views were sent, by key (only keys wanted)
        self.have: dict[str, Thumb] = {}
        #: when each wanted key may be read again
        self.due: dict[str, float] = {}
        self._watched_until = float("-inf")

    def show(self, wanted: Iterable[str]) -> bool:
        """The page now shows *wanted*; True if one of them was never read (read it soon).
        A key that left the page, or stopped, is forgotten here and in the views alike."""
        self.wanted = frozenset(wanted)
        for key in [k for k in self.due if k not in self.wanted]:
            del self.due[key]
            self.have.pop(key, None)
        return any(k not in self.due for k in self.wanted)

    def watch(self, now: float) -> None:
        """A view asked: it watches for the next two intervals and a half (a late ask, as a
        throttled timer's, does not stop the pictures; a view gone stops them soon)."""
        self._watched_until = now + 2.5 * self.interval

    def watched(self, now: float) -> bool:
        return now < self._watched_until

    def to_read(self, now: float) -> list[str]:
        """The wanted keys due now, in a stable order (none while no view watches)."""
        if not self.watched(now):
            return []
        return sorted(k for k in self.wanted if self.due.get(k, float("-inf")) <= now)

    def reading(self, keys: Iterable[str], now: float) -> None:
        """*keys* are being read: not due again for an interval."""
        for key in keys:
            self.due[key] = now + self.interval

    def got(self, found: Mapping[str, Thumb], now: float) -> dict[str, Thumb]:
        """Take a read's results; what changed for the views (keys still wanted only)."""
        changed = {}
        for key, thumb in found.items():
            if key not in self.wanted:
                continue  # left the page while it was read
            if thumb.word:
                self.due[key] = now + self.recheck
            old = self.have.get(key)
            if old is None or (old.digest, old.word) != (thumb.digest, thumb.word):
                self.have[key] = changed[key] = thumb
        return changed


def message(thumbs: Mapping[str, Thumb]) -> tuple[dict[str, object], list[bytes]]:
    """*thumbs* as one comm message for the views: ``{"kind": "thumbs", "shots": [[key,
    width, height], ...], "words": {key: [word, why]}}``, the PNGs as buffers in the
    order of ``shots``."""
    shots: list[list[object]] = []
    buffers: list[bytes] = []
    words: dict[str, list[str]] = {}
    for key, thumb in thumbs.items():
        if thumb.word:
            words[key] = [thumb.word, thumb.why]
        else:
            shots.append([key, thumb.width, thumb.height])
            buffers.append(thumb.png)
    return {"kind": "thumbs", "shots": shots, "words": words}, buffers

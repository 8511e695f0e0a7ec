"""How long to wait before the next attempt to reach a host again: doubling, capped, jittered.

Jitter: when every daemon of a fleet goes down at once (a network cut, a host rebooting many
daemons), the clients notice within the same moment. Without jitter they would all try again
in the same instant, every time; "equal jitter" (a uniform draw over the upper half of the
doubled delay) spreads each round over half its length, and keeps the latest try where the
plain doubling puts it (0.5, 1, 2 ... 30 s), so a host is never tried later than before.
"""

from __future__ import annotations

import random

__all__ = ["FIRST", "MOST", "delay"]

#: the first delay's upper bound, and the cap, in seconds
FIRST = 0.5
MOST = 30.0

_random = random.Random()


def delay(attempt: int, *, first: float = FIRST, most: float = MOST) -> float:
    """Seconds to wait before attempt *attempt* + 1 (*attempt* from 0): uniform over
    [d/2, d], d = min(first * 2**attempt, most)."""
    d = min(first * 2.0 ** min(attempt, 64), most)
    return d / 2 + _random.random() * d / 2

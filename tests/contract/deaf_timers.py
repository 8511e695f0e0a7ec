"""A deliberately broken implementation, for the kit to catch: ``update_timeout`` does
nothing, so a timer added disabled is never armed. libvirt's remote streams arm theirs that
way (added at -1, set to 0 when data or the stream's end arrives): every stream clause over a
daemon must fail on it. (The in-process ``stream-read`` is an fd watch, enabled when added:
libvirtaio's id 0 fails that one for real.)"""

from __future__ import annotations

from ipyvirt import AsyncioEventImpl


class DeafTimers(AsyncioEventImpl):
    def update_timeout(self, timer: int, interval_ms: int) -> None:
        pass  # broken on purpose

"""A deliberately broken implementation, for the kit to catch: a removal pays its free
function at once, inside the remove hook (and so inside the callback that removed it).
libvirt calls the remove hooks with its own locks held; a free function that takes them
deadlocks. The ``free-once`` clause must fail on it."""

from __future__ import annotations

from ipyvirt import AsyncioEventImpl


class EagerFrees(AsyncioEventImpl):
    def remove_handle(self, watch: int) -> int:
        done = super().remove_handle(watch)
        self._frees.run(self._io)  # broken on purpose: inside the hook
        return done

    def remove_timeout(self, timer: int) -> int:
        done = super().remove_timeout(timer)
        self._frees.run(self._main)  # broken on purpose: inside the hook
        return done

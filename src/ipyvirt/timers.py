"""Timers: libvirt's timeouts as asyncio handles on the main loop.

A timer's *wanted* state (its interval, whether it was removed) may be changed from any
thread, under the owner's registry lock; its asyncio handle is only touched on the main
loop's thread, by :meth:`TimerSet.arm` and :meth:`TimerSet.fire`.

The hand-over's invariant: every change of the wanted state is followed by an ``arm`` of that
timer queued on the main loop (or run there at once), and ``arm`` reads the wanted state when
it runs, not when it was queued. So the last ``arm`` to run sees the last change, whatever
the order in which threads made them: the handle always ends up as the last change wants.
``call_soon_threadsafe`` wakes the loop, so a timer enabled from another thread fires at once
(a plain ``call_soon`` would wait for whatever wakes the loop next).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ipyvirt.eventimpl import FreeCallback, TimeoutCallback
from ipyvirt.lanes import LoopRunner

__all__ = ["Timer", "TimerSet"]


@dataclass(eq=False, slots=True)
class Timer:
    id: int
    #: milliseconds between fires; -1 disabled, 0 every loop iteration
    interval_ms: int
    cb: TimeoutCallback
    opaque: Any
    ff: FreeCallback | None
    fires: int = 0
    removed: bool = False
    # only touched on the main loop's thread
    handle: asyncio.Handle | None = None


#: ``run(timer, cb, opaque)``: EventImpl._run_timeout_callback
RunTimer = Callable[[int, TimeoutCallback, Any], object]


class TimerSet:
    """The live timers, armed on one asyncio loop (:meth:`bind`)."""

    def __init__(self, run: RunTimer, failed: Callable[[int], object]) -> None:
        self._run = run
        self._failed = failed
        self.by_id: dict[int, Timer] = {}
        self._runner: LoopRunner | None = None
        #: fires of timers already removed, so the total never goes down
        self.retired_fires = 0
        #: set by the owner when it closes: arm cancels and arms nothing
        self.closed = False

    def bind(self, runner: LoopRunner) -> None:
        """Arm on *runner*'s loop from now on; the owner re-arms every timer there."""
        self._runner = runner

    # -- changes (under the owner's lock; the caller then queues arm on the main loop) ---------

    def add(self, timer: Timer) -> None:
        self.by_id[timer.id] = timer

    def update(self, ident: int, interval_ms: int) -> Timer | None:
        timer = self.by_id.get(ident)
        if timer is not None:
            timer.interval_ms = interval_ms
        return timer

    def remove(self, ident: int) -> Timer | None:
        timer = self.by_id.pop(ident, None)
        if timer is not None:
            timer.removed = True
            self.retired_fires += timer.fires
        return timer

    # -- on the main loop's thread ----------------------------------------------------------------

    def arm(self, timer: Timer) -> None:
        """Schedule *timer*'s next fire from its wanted state, now."""
        if timer.handle is not None:
            timer.handle.cancel()
            timer.handle = None
        runner = self._runner
        if timer.removed or timer.interval_ms < 0 or self.closed or runner is None:
            return
        loop = runner.loop
        if timer.interval_ms == 0:
            timer.handle = loop.call_soon(self.fire, timer)
        else:
            timer.handle = loop.call_at(loop.time() + timer.interval_ms / 1000, self.fire, timer)

    def fire(self, timer: Timer) -> None:
        timer.handle = None
        if timer.removed or timer.interval_ms < 0:
            return
        runner = self._runner
        if runner is not None and not runner.thread:
            runner.thread = threading.current_thread().name
        # Re-arm before the callback, as libvirt's own loop does: the callback may change or
        # remove the timer, and that must win.
        self.arm(timer)
        timer.fires += 1
        try:
            self._run(timer.id, timer.cb, timer.opaque)
        except Exception:
            self._failed(timer.id)

    def fire_due(self, timers: list[Timer], budget: int) -> int:
        """Fire now, on the main loop's thread, each of *timers* that is due: enabled, and
        of interval 0 or past its deadline. At most *budget*; returns how many fired.

        Each is looked at again just before it fires, so a callback that changes or removes
        a timer later in *timers* wins. Invariant: a timer has at most one armed handle: the
        one armed for a timer fired here is cancelled first (else the loop would fire it a
        second time), then it fires as from the loop (:meth:`fire`: re-armed from its wanted
        state before the callback); an ``arm`` still handed over only re-arms it.
        """
        runner = self._runner
        if runner is None:
            return 0
        now = runner.loop.time()
        fired = 0
        for timer in timers:
            if fired >= budget:
                break
            if timer.removed or timer.interval_ms < 0:
                continue
            handle = timer.handle  # None while its arming is handed over
            due = timer.interval_ms == 0 or (
                isinstance(handle, asyncio.TimerHandle)
                and not handle.cancelled()
                and handle.when() <= now
            )
            if due:
                if handle is not None:
                    handle.cancel()
                    timer.handle = None
                self.fire(timer)
                fired += 1
        return fired

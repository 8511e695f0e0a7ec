"""The contract between libvirt and an event loop: Perl's ``Sys::Virt::EventImpl``, in Python.

libvirt does no I/O scheduling of its own once an application registers an event loop
implementation: it asks the application to watch file descriptors and to run timers, through
six hooks (https://libvirt.org/html/libvirt-libvirt-event.html#virEventRegisterImpl).
:class:`EventImpl` is the base class for such an implementation. A subclass overrides the six
hooks and calls the three helpers; :meth:`EventImpl.register` hands the hooks to libvirt,
adapting libvirt-python's calling conventions so that a subclass never touches them.

The rules every implementation keeps (``ipyvirt.testing`` checks each one):

- watch and timer ids are positive and not reused while alive;
- a watch whose events are non-zero reports ``HANDLE_ERROR`` and ``HANDLE_HANGUP`` even when
  not asked for; events 0 disables a watch entirely;
- ``remove_*`` returns 0, or -1 for an unknown id; updating an unknown id is a logged no-op;
  no exception ever escapes from a hook into libvirt;
- a free function runs exactly once, never inside a callback or a hook (not nested in one
  on its own thread's stack); on the thread that called ``remove_*``, after it returned
  (the loop thread of another lane may pay it sooner, as libvirt's own loop does);
- a timer of -1 ms is disabled, 0 ms fires once per loop iteration, N ms every N ms, and a
  changed interval takes effect at once;
- a callback may update or remove its own or any other watch or timer;
- hooks may be called from any thread.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

import libvirt

from ipyvirt.errors import EventLoopAlreadyRegistered

__all__ = [
    "HANDLE_ERROR",
    "HANDLE_HANGUP",
    "HANDLE_READABLE",
    "HANDLE_WRITABLE",
    "EventImpl",
    "FreeCallback",
    "HandleCallback",
    "TimeoutCallback",
    "event_names",
    "registered_impl",
]

log = logging.getLogger("ipyvirt")

#: the fd can be read without blocking (libvirt's ``VIR_EVENT_HANDLE_READABLE``)
HANDLE_READABLE: Final[int] = libvirt.VIR_EVENT_HANDLE_READABLE
#: the fd can be written without blocking (``VIR_EVENT_HANDLE_WRITABLE``)
HANDLE_WRITABLE: Final[int] = libvirt.VIR_EVENT_HANDLE_WRITABLE
#: the fd is in error; reported on any enabled watch, asked for or not (``VIR_EVENT_HANDLE_ERROR``)
HANDLE_ERROR: Final[int] = libvirt.VIR_EVENT_HANDLE_ERROR
#: the peer hung up; reported on any enabled watch, asked for or not (``VIR_EVENT_HANDLE_HANGUP``)
HANDLE_HANGUP: Final[int] = libvirt.VIR_EVENT_HANDLE_HANGUP

#: ``cb(watch, fd, events, opaque)``: libvirt's ``virEventHandleCallback``.
HandleCallback = Callable[[int, int, int, Any], object]
#: ``cb(timer, opaque)``: libvirt's ``virEventTimeoutCallback``.
TimeoutCallback = Callable[[int, Any], object]
#: ``ff(opaque)``: libvirt's ``virFreeCallback``.
FreeCallback = Callable[[Any], object]

_EVENT_NAMES: Final = (
    (HANDLE_READABLE, "READABLE"),
    (HANDLE_WRITABLE, "WRITABLE"),
    (HANDLE_ERROR, "ERROR"),
    (HANDLE_HANGUP, "HANGUP"),
)


def event_names(events: int) -> str:
    """``HANDLE_READABLE | HANDLE_HANGUP`` as ``"READABLE|HANGUP"``; 0 as ``"-"``."""
    return "|".join(name for bit, name in _EVENT_NAMES if events & bit) or "-"


class EventImpl(abc.ABC):
    """An event loop implementation for libvirt.

    Subclasses override exactly the six hooks below and call the three ``_run_*`` /
    ``_free_*`` helpers from their loop. The hooks take plain Python callables with libvirt's
    own signatures, so an implementation can be driven directly (tests, tutorials) as well as
    by libvirt once :meth:`register` was called.
    """

    # -- the six hooks ---------------------------------------------------------------------

    @abc.abstractmethod
    def add_handle(
        self, fd: int, events: int, cb: HandleCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        """Watch *fd* for *events*; return a positive watch id, or -1 on failure.

        https://libvirt.org/html/libvirt-libvirt-event.html#virEventAddHandleFunc
        """

    @abc.abstractmethod
    def update_handle(self, watch: int, events: int) -> None:
        """Change the events of *watch*; an unknown id is logged and ignored.

        https://libvirt.org/html/libvirt-libvirt-event.html#virEventUpdateHandleFunc
        """

    @abc.abstractmethod
    def remove_handle(self, watch: int) -> int:
        """Stop *watch*: 0, or -1 for an unknown id. Its free function runs later, once.

        https://libvirt.org/html/libvirt-libvirt-event.html#virEventRemoveHandleFunc
        """

    @abc.abstractmethod
    def add_timeout(
        self, interval_ms: int, cb: TimeoutCallback, opaque: Any, ff: FreeCallback | None
    ) -> int:
        """Start a timer (-1 disabled, 0 every loop iteration); return a positive id or -1.

        https://libvirt.org/html/libvirt-libvirt-event.html#virEventAddTimeoutFunc
        """

    @abc.abstractmethod
    def update_timeout(self, timer: int, interval_ms: int) -> None:
        """Change the interval of *timer*, taking effect at once; unknown ids are ignored.

        https://libvirt.org/html/libvirt-libvirt-event.html#virEventUpdateTimeoutFunc
        """

    @abc.abstractmethod
    def remove_timeout(self, timer: int) -> int:
        """Stop *timer*: 0, or -1 for an unknown id. Its free function runs later, once.

        https://libvirt.org/html/libvirt-libvirt-event.html#virEventRemoveTimeoutFunc
        """

    # -- the three helpers -----------------------------------------------------------------
    # Exceptions propagate: the loop that calls a helper decides how to report them.

    def _run_handle_callback(
        self, watch: int, fd: int, events: int, cb: HandleCallback, opaque: Any
    ) -> None:
        """Run a watch's callback with the events that occurred."""
        cb(watch, fd, events, opaque)

    def _run_timeout_callback(self, timer: int, cb: TimeoutCallback, opaque: Any) -> None:
        """Run a timer's callback."""
        cb(timer, opaque)

    def _free_callback_opaque(self, ff: FreeCallback | None, opaque: Any) -> None:
        """Run a free function; call it outside any callback or hook, once per removal."""
        if ff is not None:
            ff(opaque)

    # -- registration ------------------------------------------------------------------------

    def register(self: _Impl) -> _Impl:
        """Make this the process's libvirt event loop implementation and return it.

        libvirt accepts one implementation per process, for the life of the process: register
        before opening any connection, or that connection's socket is never watched.
        """
        global _registered
        with _registration_lock:
            if _registered is not None:
                raise EventLoopAlreadyRegistered(
                    f"{_registered!r} is already libvirt's event loop in this process and "
                    "libvirt accepts only one: reuse it (bind it to another loop) instead."
                )
            probe: list[int] = []
            try:
                libvirt.virEventRegisterImpl(*libvirt_hooks(self, probe))
            except (RuntimeError, libvirt.libvirtError) as err:
                raise EventLoopAlreadyRegistered(
                    f"libvirt refused a second event loop implementation ({err}): another one "
                    "(libvirtaio, the default impl) owns this process; restart it and register "
                    "ipyvirt first."
                ) from None
            # libvirt-python accepts hooks after virEventRegisterDefaultImpl() but libvirt
            # ignores them ("Ignoring attempt to replace registered event loop"): ask libvirt
            # for a timer and see who gets the call.
            timer = libvirt.virEventAddTimeout(-1, _ignore, None)
            libvirt.virEventRemoveTimeout(timer)
            if not probe:
                raise EventLoopAlreadyRegistered(
                    "libvirt's default event loop (virEventRegisterDefaultImpl) already owns "
                    "this process and libvirt ignored ipyvirt's: restart it and register "
                    "ipyvirt before anything else."
                )
            _registered = self
        return self


_Impl = TypeVar("_Impl", bound=EventImpl)
_registration_lock = threading.Lock()
_registered: EventImpl | None = None


def registered_impl() -> EventImpl | None:
    """The :class:`EventImpl` this process registered with libvirt, if any."""
    return _registered


# -- the adapters libvirt calls ----------------------------------------------------------------
# libvirt-python calls the registered hooks with its own conventions: the free function is
# not an argument but travels inside ``opaque`` (a tuple built in C), and is run with
# ``libvirt.virEventInvokeFreeCallback(opaque)``. The callback ``cb`` it passes already takes
# libvirt's signature. Each adapter turns an exception into a log line and libvirt's error
# value: an exception must never unwind into libvirt's C code.


def _ignore(*args: object) -> None:
    pass


def _invoke_libvirt_free(opaque: Any) -> None:
    libvirt.virEventInvokeFreeCallback(opaque)


def _guarded(name: str, hook: Callable[..., Any], failed: int | None) -> Callable[..., Any]:
    def adapter(*args: Any) -> Any:
        try:
            return hook(*args)
        except Exception:
            log.exception("ipyvirt: event hook %s%r failed", name, args[:2])
            return failed

    adapter.__name__ = adapter.__qualname__ = name
    return adapter


def _with_ff(hook: Callable[..., int], seen: list[int] | None) -> Callable[..., int]:
    def with_ff(*args: Any) -> int:
        if seen is not None and not seen:
            seen.append(1)  # register() checks that libvirt calls us
        return hook(*args, _invoke_libvirt_free)

    return with_ff


# One row per virEventRegisterImpl argument, in its order: (libvirt's parameter name, the
# EventImpl method that serves it, whether libvirt's free function rides in opaque, the value
# returned to libvirt when the hook fails).
HOOK_TABLE: Final[tuple[tuple[str, str, bool, int | None], ...]] = (
    ("addHandle", "add_handle", True, -1),
    ("updateHandle", "update_handle", False, None),
    ("removeHandle", "remove_handle", False, -1),
    ("addTimeout", "add_timeout", True, -1),
    ("updateTimeout", "update_timeout", False, None),
    ("removeTimeout", "remove_timeout", False, -1),
)


def libvirt_hooks(impl: EventImpl, seen: list[int] | None = None) -> tuple[Callable[..., Any], ...]:
    """The six callables :meth:`EventImpl.register` hands to ``virEventRegisterImpl``; the
    add hooks put an item in *seen* the first time libvirt calls them."""
    hooks = []
    for slot, method, takes_ff, failed in HOOK_TABLE:
        hook = getattr(impl, method)
        hooks.append(_guarded(slot, _with_ff(hook, seen) if takes_ff else hook, failed))
    return tuple(hooks)

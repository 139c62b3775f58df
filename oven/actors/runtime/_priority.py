"""CPU priority for the threads that run batch work (captures, encodes)."""

from __future__ import annotations

import ctypes
import logging
import os
import threading

log = logging.getLogger(__name__)


def lower_thread_priority(nice: int) -> None:
    """Give the calling thread niceness `nice` (never a higher priority than it has).

    On Linux the nice value belongs to a thread, and a process inherits the value of the thread
    that starts it: an actor's loop thread lowered here starts Chromium (through Playwright's
    driver) or ffmpeg at the same niceness, with no wrapper and no window in which a fresh
    process or thread runs at full priority. Raising it back would need CAP_SYS_NICE, so a
    changed setting takes effect at the next start of the service.
    """
    if nice <= 0:
        return
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:  # e.g. a seccomp profile that forbids it: run, just not niced
        log.warning("could not lower thread %d to nice %d: %s", tid, nice, exc)
        return
    _children_keep_it()


_PR_CAPBSET_DROP = 24  # <linux/prctl.h>
_CAP_SYS_NICE = 23  # <linux/capability.h>


def _children_keep_it() -> None:
    """Processes this thread starts cannot raise their priority back.

    Chromium sets its own threads' nice values (the compositor to -8, most others to 0); run as
    root it may, and a capture would again outrank the HTTP loop. Dropping CAP_SYS_NICE from
    this thread's capability bounding set (which processes it starts inherit) makes those
    calls fail as they do for any unprivileged user, which Chromium expects and ignores.
    Without root there is nothing to drop and the call fails harmlessly (EPERM).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_NICE, 0, 0, 0) != 0 and os.geteuid() == 0:
        log.warning("could not drop CAP_SYS_NICE for the processes this thread starts: %s",
                    os.strerror(ctypes.get_errno()))

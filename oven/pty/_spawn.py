"""Starting a child on a fresh PTY as the leader of its own session, with the PTY as its ctty.

`subprocess` cannot make the slave the controlling tty, and forking in a process that runs actor
threads and then running Python in the child (os.forkpty, preexec_fn) can deadlock on a lock some
other thread held at fork time. So the child is started through util-linux `setsid --ctty`: it
calls setsid() and ioctl(TIOCSCTTY) on stdin and execs the command, all in C. Because our child is
never a process-group leader, setsid does not fork again: its pid is the command's pid, and that
pid is also the process group and the session id (what close() signals).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import termios
import time
import tty
from collections.abc import Mapping

import psutil

from ._errors import SpawnError
from ._settings import PtyProfile

# The shell gets a small base environment, not ours: the service's env holds secrets (tokens,
# S3 keys) that a user of a terminal must not read from `env`.
_INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SHELL")


def set_window_size(fd: int, cols: int, rows: int) -> None:
    """TIOCSWINSZ; the kernel itself sends SIGWINCH to the tty's foreground process group."""
    if not (1 <= cols <= 65535 and 1 <= rows <= 65535):
        raise ValueError(f"window size must be 1..65535, got {cols}x{rows}")
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def child_env(profile: PtyProfile, base: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if base is None else base
    env = {key: source[key] for key in _INHERITED_ENV if key in source}
    env.setdefault("PATH", os.defpath)
    env["TERM"] = "xterm-256color"
    env.update(profile.env)
    return env


def spawn_on_pty(
    profile: PtyProfile, *, cols: int, rows: int
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start the profile's command on a new PTY; returns (non-blocking master fd, process)."""
    setsid = shutil.which("setsid")
    if setsid is None:
        raise SpawnError("util-linux `setsid` is needed to give the child a controlling tty")
    env = child_env(profile)
    # Resolved here so a typo in a profile is an error now, not a child that exits with 1.
    program = shutil.which(profile.command[0], path=env["PATH"])
    if program is None:
        raise SpawnError(f"command not found: {profile.command[0]!r} (PATH={env['PATH']})")
    if profile.cwd is not None and not profile.cwd.is_dir():
        raise SpawnError(f"cwd is not a directory: {profile.cwd}")
    master, slave = pty.openpty()
    try:
        set_window_size(slave, cols, rows)
        if profile.raw:
            # Termios belongs to the tty, not the process: set it before exec, no child code.
            tty.setraw(slave)
        process = subprocess.Popen(
            [setsid, "--ctty", program, *profile.command[1:]],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=profile.cwd,
            close_fds=True,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        # Only the child keeps the slave open, so the master reads EIO once the child's side
        # is gone instead of waiting forever.
        os.close(slave)
    os.set_blocking(master, False)
    return master, process


def kill_session(sid: int) -> list[int]:
    """SIGKILL every process whose session is `sid` (the child's group and any job groups)."""
    killed = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and pid != sid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return killed


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


HANGUP_REPEAT_S = 0.25


async def hang_up(pid: int, exited: asyncio.Event, *, grace_s: float) -> bool:
    """Hang up the session led by `pid` as a terminal closing does; True once `exited` is set
    within `grace_s`, False if it was not (the caller kills).

    The child leads its own process group (setsid), so signalling -pid reaches the pipelines
    it started and never us. SIGHUP is what a terminal closing sends (bash ignores SIGTERM when
    interactive); SIGCONT wakes stopped jobs so they see it. Sent again every HANGUP_REPEAT_S:
    bash takes a SIGHUP that lands after a command's output and before readline waits for the
    next line, notes it, then blocks reading the terminal and never acts on it (measured: 1
    close in 12 made right after a command's output waited the whole grace, then SIGKILL).
    """
    deadline = time.monotonic() + grace_s
    while True:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError):
                # The pid too: just after spawn `setsid` may not have made the group yet.
                os.kill(pid, sig)
                os.killpg(pid, sig)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(HANGUP_REPEAT_S, remaining)):
                await exited.wait()
        if exited.is_set():
            return True

"""A PTY session: one child on a non-blocking PTY master, its input buffer and its output ring.

Flow control, end to end:
- Input: write() queues at most `input_buffer_bytes`; beyond that it awaits room, which is the
  backpressure the WebSocket reader feels (it stops reading, TCP pushes back on the sender).
  The master is never written blocking: a blocking write of a paste deadlocks after ~25-40 KB
  because the kernel holds only ~20 KB each way and the echo must be drained meanwhile. Partial
  writes resume when the loop reports the master writable; output is read all the while.
- Output: everything read goes into the ring (`ring_bytes`). The controlling client's unacked
  output pauses reading the master above `pause_high_bytes` and resumes below `resume_low_bytes`,
  so a client that does not render stops the child (its writes block in the kernel), not our
  memory. Observers never pause: they get Resync when they fall off the ring and are detached
  when they stay behind without progress for `observer_timeout_s`.

Cooked (canonical) ttys hold at most 4095 characters of an unfinished line. N_TTY still echoes
every character of a longer line, so the user sees it whole, but the program receives the first
4095 and the rest until the newline is dropped without a word (tests/pty shows it). A client
pasting into a cooked tty must split lines below that, or the profile must use `raw = true`
(bash's readline reads raw, so pastes at its prompt are not cut).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import subprocess
import termios
import time

from ._client import Closed, Message, Output, PtyClient, Resync
from ._errors import PtyError, SessionEnded
from ._input import InputPump
from ._record import CastRecorder
from ._ring import OutputRing
from ._settings import PtyProfile, PtySettings
from ._spawn import hang_up, kill_session, running, set_window_size, spawn_on_pty
from ._state import SessionState

log = logging.getLogger(__name__)

_READ_CHUNK = 64 * 1024
_READS_PER_WAKEUP = 4  # bounded so one busy child cannot starve the other sessions on the loop


class PtySession:
    """Owns one child process and its PTY master on the running asyncio loop."""

    def __init__(self, session_id: str, profile: PtyProfile, settings: PtySettings) -> None:
        # Use `await PtySession.spawn(...)`; this only sets up the empty session.
        self.id = session_id
        self.profile = profile
        self.settings = settings
        self.state = SessionState.STARTING
        self.created_at = time.time()
        self.pid: int | None = None
        self.exit_status: int | None = None
        self.paused = False
        self._loop = asyncio.get_running_loop()
        self._fd = -1
        self._process: subprocess.Popen[bytes] | None = None
        self._ring = OutputRing(settings.ring_bytes)
        self._output_done = False  # EOF/EIO on the master, or closed
        self._input: InputPump | None = None
        self._clients: list[PtyClient] = []
        self._controller: PtyClient | None = None
        self._exited = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._recorder: CastRecorder | None = None
        self._paused_since = 0.0
        self._leftovers: list[int] = []
        self._counters = dict.fromkeys(
            ("bytes_out", "paused_seconds", "pauses", "resyncs", "stalled_disconnects"), 0.0
        )

    # ---- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def spawn(
        cls, session_id: str, profile: PtyProfile, *, cols: int, rows: int, settings: PtySettings
    ) -> PtySession:
        """Start `profile` on a new PTY of `cols` x `rows`; the session is RUNNING on return."""
        self = cls(session_id, profile, settings)
        try:  # fork+exec of a small `setsid` blocks the loop for a few milliseconds only
            self._fd, self._process = spawn_on_pty(profile, cols=cols, rows=rows)
        except BaseException:
            self._set_state(SessionState.CLOSED)
            raise
        self.pid = self._process.pid
        self._input = InputPump(
            self._fd,
            limit=settings.input_buffer_bytes,
            check_open=self._check_running,
            echoing=self._echoing,
        )
        self._set_state(SessionState.RUNNING)
        self._watch_exit(self._process.pid)
        self._loop.add_reader(self._fd, self._on_readable)
        self._watchdog = self._loop.create_task(self._watch_observers(), name=f"pty {self.id}")
        if settings.record_dir is not None:
            client = PtyClient(self, controlling=False, position=0, internal=True)
            self._clients.append(client)
            path = settings.record_dir / f"{session_id}.cast"
            self._recorder = CastRecorder(path, client, cols=cols, rows=rows, title=session_id)
        log.info("pty session %s started: pid %d, %s", self.id, self.pid, profile.command)
        return self

    def _set_state(self, new: SessionState) -> None:
        self.state.check_transition(new)
        self.state = new

    def _watch_exit(self, pid: int) -> None:
        # A pidfd turns "the child exited" into a readable fd: no waiter thread, no SIGCHLD.
        pidfd = os.pidfd_open(pid)

        def on_exit() -> None:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
            assert self._process is not None
            # Before reaping, while the zombie still holds the pid (and so the session id):
            # afterwards the number could name someone else's session.
            # Leftovers (background jobs) would keep the slave open and outlive the session.
            self._leftovers = kill_session(pid)
            self._on_exit(self._process.wait())  # already exited: this reaps, it doesn't block

        self._loop.add_reader(pidfd, on_exit)

    def _on_exit(self, status: int) -> None:
        self.exit_status = status
        if self.state is SessionState.RUNNING:
            self._set_state(SessionState.EXITED)
            log.info("pty session %s: child exited with %d", self.id, status)
        self._fail_input(f"the child exited with status {status}")
        self._exited.set()
        self._wake_clients()

    async def wait_exit(self, *, timeout: float) -> int:
        """The child's exit status (negative: killed by that signal), once it has exited."""
        async with asyncio.timeout(timeout):
            await self._exited.wait()
        assert self.exit_status is not None
        return self.exit_status

    async def close(self) -> None:
        """Hang up and reap the whole session; idempotent, and safe to call concurrently."""
        if self._closing is None:
            self._closing = self._loop.create_task(self._close(), name=f"close pty {self.id}")
        # Shielded: a caller cancelled mid-close must not leave processes half killed.
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self._fail_input("the session was closed")
        if self._fd >= 0:
            self._stop_reading()
            self._output_done = True  # what the child writes while dying is not wanted
        if self.pid is not None and not self._exited.is_set():
            await self._terminate(self.pid)
        await self._wait_leftovers_gone()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._output_done = True
        self._set_state(SessionState.CLOSED)
        # Clients stay attached: each drains what the ring still holds, then gets Closed.
        self._wake_clients()
        if self._recorder is not None:
            # The recorder delivers what is left of the ring, bounded like the child's grace.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.close_timeout_s):
                    await self._recorder.task
        if self._watchdog is not None:
            self._watchdog.cancel()
        log.info("pty session %s closed (exit status %s)", self.id, self.exit_status)

    async def _terminate(self, pid: int) -> None:
        grace_s = self.settings.close_timeout_s
        if not await hang_up(pid, self._exited, grace_s=grace_s):
            log.warning("pty session %s: pid %d ignored SIGHUP/SIGTERM, killing", self.id, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # not yet reaped, so the pid is still ours
            kill_session(pid)
            # SIGKILL cannot be ignored; the bound only guards against a D-state child.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._exited.wait()

    async def _wait_leftovers_gone(self) -> None:
        # SIGKILL is delivered asynchronously; close() promises no process of the session is
        # left running when it returns (zombies are init's to reap, they hold no resources).
        deadline = time.monotonic() + self.settings.close_timeout_s
        while any(running(pid) for pid in self._leftovers):
            if time.monotonic() > deadline:
                log.warning("pty session %s: %s survived SIGKILL", self.id, self._leftovers)
                return
            await asyncio.sleep(0.01)

    # ---- input -----------------------------------------------------------------------------

    @property
    def input_buffered(self) -> int:
        return self._input.buffered if self._input is not None else 0

    async def write(self, data: bytes) -> None:
        """Queue `data` (≤ max_frame_bytes) for the child; awaits room while the buffer is full.

        That await is the backpressure a WebSocket reader feels. Raises SessionEnded once the
        child has exited or the session is closing; a cancelled waiting write queues nothing.
        """
        if len(data) > self.settings.max_frame_bytes:
            raise ValueError(f"frame of {len(data)} bytes > max_frame_bytes")
        if self._input is None:
            raise SessionEnded(f"cannot write to a session that is {self.state}")
        await self._input.write(data)

    def _check_running(self) -> None:
        if self.state is not SessionState.RUNNING or self._closing is not None:
            raise SessionEnded(f"cannot write to a session that is {self.state}")

    def _echoing(self) -> bool:
        # tcgetattr on a master reports the slave's termios, as the child last set it.
        try:
            return bool(termios.tcgetattr(self._fd)[3] & termios.ECHO)
        except termios.error:
            return False

    def _fail_input(self, reason: str) -> None:
        if self._input is not None:
            self._input.fail(reason)

    # ---- output ----------------------------------------------------------------------------

    @property
    def ring_start(self) -> int:
        return self._ring.start

    @property
    def ring_end(self) -> int:
        return self._ring.end

    def _on_readable(self) -> None:
        for _ in range(_READS_PER_WAKEUP):
            try:
                data = os.read(self._fd, _READ_CHUNK)
            except BlockingIOError:
                if self._input is not None:
                    self._input.kick()  # output drained: room for the next echo burst
                return
            except OSError as error:
                if error.errno != errno.EIO:  # EIO is how a master reports the hang-up
                    log.warning("pty session %s: read failed: %s", self.id, error)
                data = b""
            if not data:
                self._stop_reading()
                self._output_done = True
                self._wake_clients()
                return
            self._ring.append(data)
            self._counters["bytes_out"] += len(data)
            self._wake_clients()
            if self._controller is not None and self._controller.unacked > (
                self.settings.pause_high_bytes
            ):
                self._pause()
                return

    def _stop_reading(self) -> None:
        if not self.paused and not self._output_done and self._fd >= 0:
            self._loop.remove_reader(self._fd)

    def _pause(self) -> None:
        self._stop_reading()
        self.paused = True
        self._paused_since = time.monotonic()
        self._counters["pauses"] += 1
        log.debug(
            "pty session %s paused: controller %d bytes behind",
            self.id,
            self.ring_end - (self._controller.acked if self._controller else 0),
        )

    def _resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        self._counters["paused_seconds"] += time.monotonic() - self._paused_since
        if not self._output_done and self._fd >= 0:
            self._loop.add_reader(self._fd, self._on_readable)

    def resize(self, cols: int, rows: int) -> None:
        """Set the window size; the kernel signals SIGWINCH to the foreground process group."""
        if self.state is not SessionState.RUNNING:
            raise PtyError(f"cannot resize a session that is {self.state}")
        set_window_size(self._fd, cols, rows)
        if self._recorder is not None:
            self._recorder.resize(cols, rows)

    # ---- clients ---------------------------------------------------------------------------

    def attach(self, *, controlling: bool, from_offset: int | None = None) -> PtyClient:
        """A new reader from `from_offset` (default: the live end; older than the ring: the
        ring's start, announced by a Resync). A new controller replaces the previous one, which
        is detached: a browser reconnecting must not wait for its dead socket to time out."""
        if self.state is SessionState.CLOSED:
            raise PtyError("cannot attach to a closed session")
        start = self.ring_end if from_offset is None else min(max(0, from_offset), self.ring_end)
        client = PtyClient(self, controlling=controlling, position=start)
        if controlling:
            if self._controller is not None:
                self._detach(self._controller, "replaced by a new controlling client")
            self._controller = client
        self._clients.append(client)
        return client

    def _take(self, client: PtyClient) -> Message | None:
        if client.position < self._ring.start:
            lost = self._ring.start - client.position
            client.position = client.acked = self._ring.start
            client.last_progress = time.monotonic()
            self._counters["resyncs"] += 1
            return Resync(client.position, lost)
        if client.position < self._ring.end:
            data = self._ring.read(client.position, self.settings.max_frame_bytes)
            message = Output(client.position, data)
            client.position += len(data)
            client.last_progress = time.monotonic()
            return message
        if self._output_done and (self._exited.is_set() or self.state is SessionState.CLOSED):
            return Closed(client.position, self.exit_status)
        return None

    def _acked(self, client: PtyClient) -> None:
        if (
            client is self._controller
            and self.paused
            and (client.unacked < self.settings.resume_low_bytes)
        ):
            self._resume()

    def _detach(self, client: PtyClient, reason: str) -> None:
        client._mark_detached(reason)
        if client in self._clients:
            self._clients.remove(client)
        if client is self._controller:
            self._controller = None
            self._resume()  # nobody left whose rendering could hold the child back

    def _wake_clients(self) -> None:
        for client in self._clients:
            client._wake_up()

    async def _watch_observers(self) -> None:
        # An observer that is behind and takes nothing for observer_timeout_s is dropped: it
        # costs nothing (the ring is shared) but a route would otherwise keep a dead peer.
        timeout = self.settings.observer_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = time.monotonic()
            for client in list(self._clients):
                if client.controlling or client.internal:
                    continue
                if client.position >= self._ring.end:
                    client.last_progress = now
                elif now - client.last_progress > timeout:
                    self._counters["stalled_disconnects"] += 1
                    log.info("pty session %s: observer stalled %.1fs, detached", self.id, timeout)
                    self._detach(client, f"no progress for {timeout:g}s")

    @property
    def stats(self) -> dict[str, float]:
        figures = dict(self._counters)
        figures["bytes_in"] = self._input.bytes_in if self._input else 0
        figures["backpressure_events"] = self._input.backpressure_events if self._input else 0
        if self.paused:
            figures["paused_seconds"] += time.monotonic() - self._paused_since
        figures["clients"] = sum(not client.internal for client in self._clients)
        return figures

    def __repr__(self) -> str:
        return f"<PtySession {self.id} {self.state} pid={self.pid}>"

"""States, exits, close, resize, recording and the settings schema of PTY sessions."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import pytest
from pydantic import ValidationError

from oven.pty import (
    Closed,
    InvalidTransition,
    PtyError,
    PtyProfile,
    PtySettings,
    SessionEnded,
    SessionState,
    SpawnError,
)

from .conftest import PY, SessionFactory, read_until, sessions_alive

MIB = 1024 * 1024


async def test_child_exiting_mid_paste_fails_the_write_and_close_leaves_no_process(
    spawn: SessionFactory,
) -> None:
    script = "import os, sys\nos.read(0, 100000)\nsys.exit(3)"
    session = await spawn(PtyProfile(command=[PY, "-c", script], raw=True))
    data = os.urandom(64 * 1024)
    with pytest.raises(SessionEnded, match="exited with status 3") as failure:
        async with asyncio.timeout(10):
            for _ in range(160):  # 10 MiB
                await session.write(data)
    assert failure.value.undelivered <= session.settings.input_buffer_bytes
    assert await session.wait_exit(timeout=5) == 3
    assert session.state is SessionState.EXITED
    await asyncio.wait_for(session.close(), 10)
    assert session.state is SessionState.CLOSED
    assert sessions_alive([session.pid]) == []


async def test_close_hangs_up_a_shell_and_its_background_job(spawn: SessionFactory) -> None:
    session = await spawn(PtyProfile(command=["bash", "--norc", "-i"]))
    client = session.attach(controlling=True)
    await session.write(b'sleep 300 & echo "job:"$!":end"\n')
    pattern = re.compile(rb"job:(\d+):end")
    out = await read_until(client, lambda seen: pattern.search(seen) is not None, timeout=10)
    match = pattern.search(out)
    assert match is not None
    sleeper = int(match.group(1))
    sessions_alive_before = sessions_alive([session.pid])
    await asyncio.wait_for(session.close(), 10)
    await asyncio.wait_for(session.close(), 1)  # idempotent
    assert sessions_alive([session.pid]) == []
    assert sleeper in sessions_alive_before
    # The client drains what is left of the output, then learns how the session ended.
    async with asyncio.timeout(5):
        while not isinstance(message := await client.next(timeout=5), Closed):
            pass
    assert message.exit_status == -signal.SIGHUP


async def test_resize_reaches_the_child(spawn: SessionFactory) -> None:
    session = await spawn(
        PtyProfile(command=["sh", "-c", "read line; stty size"]), cols=80, rows=24
    )
    client = session.attach(controlling=True)
    session.resize(132, 43)
    await session.write(b"\n")
    out = await read_until(client, lambda seen: b"43 132" in seen, timeout=10)
    assert b"43 132" in out


async def test_invalid_state_transitions_raise(spawn: SessionFactory) -> None:
    with pytest.raises(InvalidTransition, match="from exited to running"):
        SessionState.EXITED.check_transition(SessionState.RUNNING)
    for state in SessionState:
        with pytest.raises(InvalidTransition):
            SessionState.CLOSED.check_transition(state)
    SessionState.STARTING.check_transition(SessionState.RUNNING)

    session = await spawn(PtyProfile(command=["cat"]))
    await session.close()
    assert session.state is SessionState.CLOSED
    with pytest.raises(SessionEnded, match="closed"):
        await session.write(b"x")
    with pytest.raises(PtyError, match="closed"):
        session.resize(100, 30)
    with pytest.raises(PtyError, match="closed"):
        session.attach(controlling=False)


async def test_frames_larger_than_max_frame_bytes_are_refused(spawn: SessionFactory) -> None:
    session = await spawn(PtyProfile(command=["cat"]), max_frame_bytes=1024)
    with pytest.raises(ValueError, match="max_frame_bytes"):
        await session.write(b"x" * 1025)


async def test_a_missing_command_is_a_spawn_error(spawn: SessionFactory) -> None:
    with pytest.raises(SpawnError, match="command not found"):
        await spawn(PtyProfile(command=["no-such-command-oven"]))


async def test_session_is_recorded_as_asciinema_v2(spawn: SessionFactory, tmp_path: Path) -> None:
    script = (
        "import sys; sys.stdout.write('h\\u00e9llo\\n'); sys.stdout.flush(); sys.stdin.readline()"
    )
    session = await spawn(
        PtyProfile(command=[PY, "-c", script], env={"PYTHONIOENCODING": "utf-8"}),
        record_dir=tmp_path,
    )
    client = session.attach(controlling=True, from_offset=0)
    await read_until(client, lambda seen: b"\n" in seen, timeout=10)
    session.resize(100, 30)
    await session.write(b"\n")
    await session.wait_exit(timeout=10)
    await session.close()
    lines = (tmp_path / f"{session.id}.cast").read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2 and header["width"] == 80 and header["height"] == 24
    events = [json.loads(line) for line in lines[1:]]
    assert all(isinstance(t, float | int) and kind in "or" for t, kind, _ in events)
    output = "".join(text for _, kind, text in events if kind == "o")
    assert output.startswith("h\u00e9llo\r\n")
    assert [text for _, kind, text in events if kind == "r"] == ["100x30"]


def test_settings_reject_unknown_keys_and_crossed_watermarks() -> None:
    with pytest.raises(ValidationError, match="extra"):
        PtySettings.model_validate({"ring_size": 1})
    with pytest.raises(ValidationError, match="pause_high_bytes < ring_bytes"):
        PtySettings(ring_bytes=MIB, pause_high_bytes=2 * MIB)
    with pytest.raises(ValidationError):
        PtyProfile(command=[])
    settings = PtySettings.model_validate(
        {"profiles": {"top": {"command": ["top"], "raw": False, "env": {"A": "b"}}}}
    )
    assert settings.profiles["top"].command == ["top"]
    assert "shell" in PtySettings().profiles

"""The Uploader actor enforces an Upload's own deadline: past it the upload is cancelled (its
connection closed) and answered with a transient error, whether or not the asker still waits.

The S3 endpoint is a real TCP server that reads requests and never answers: a stalled peer.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest

from oven.actors.runtime import ActorContext
from oven.actors.uploader._actor import Upload, UploadDeadlinePassed, Uploader
from oven.config import Settings
from oven.supervisor import Registry

from .moto_s3 import s3_settings_for


class StalledServer:
    """Accepts connections and reads whatever comes; answers nothing. Records each close."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = threading.Event()
        self.closed_by_client = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, name="stalled-s3", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.set()
            reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
            reader.start()
            self._threads.append(reader)

    def _read(self, conn: socket.socket) -> None:
        try:
            while conn.recv(65536):
                pass
        except OSError:
            return
        self.closed_by_client.set()  # recv returned b"": the client closed its end

    def close(self) -> None:
        self.sock.close()
        for conn in self._conns:
            conn.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def stalled() -> Iterator[StalledServer]:
    server = StalledServer()
    yield server
    server.close()


@pytest.fixture
def uploader(stalled: StalledServer, tmp_path: Path) -> Iterator[pykka.ActorRef[Any]]:
    s3 = s3_settings_for(f"http://127.0.0.1:{stalled.port}", create_bucket=False,
                         read_timeout_s=60.0, max_attempts=1)
    settings = Settings.model_validate({
        "server": {"data_dir": str(tmp_path / "data")},
        "storage": {"backend": "s3", "s3": s3.model_dump()}})
    ctx = ActorContext(name="uploader", mailbox_capacity=10, lookup=Registry(),
                       on_exit=lambda *a: None)
    ref = Uploader.start(ctx, settings)
    yield ref
    ref.stop(timeout=15)


def test_an_upload_to_a_stalled_store_is_cancelled_when_its_deadline_passes(
    uploader: pykka.ActorRef[Any], stalled: StalledServer, tmp_path: Path,
) -> None:
    path = tmp_path / "result.png"
    path.write_bytes(b"\x89PNG" + b"\0" * 50_000)
    started = time.monotonic()
    reply = uploader.ask(Upload("job-1", "grabs/ab/abc.png", path, "image/png",
                                deadline=started + 3.0), block=False)
    assert stalled.accepted.wait(2.5), "the upload never reached the store"
    with pytest.raises(pykka.Timeout):  # the asker gives up first and never cancels
        reply.get(timeout=0.1)
    with pytest.raises(UploadDeadlinePassed, match=r"job-1.*deadline passed") as caught:
        reply.get(timeout=5)
    assert caught.value.transient is True
    assert 3.0 <= time.monotonic() - started < 4.5
    # Cancelled for real: the connection is closed, not left waiting 60 s for an answer.
    assert stalled.closed_by_client.wait(2)
    assert path.exists()  # the file stays for a later retry

"""Storage outage: a finished grab waits in upload_pending and completes when storage returns."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess, StartOven
from tests.storage.moto_s3 import BUCKET, MotoServer, start_moto

from .grab_client import metric, submit, wait_for_job


class Outage:
    """A TCP forwarder to the S3 server that the test can take down and bring back.

    Down means nothing listens on its port (connection refused), as when the endpoint is off.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept() blocked in another thread
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for conn in self._open:
            # shutdown, not just close: close() from this thread would not wake the pump
            # blocked in recv(), and the connection would stay half-open instead of failing.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the outage began
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._open += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[MotoServer, Outage]]:
    server = start_moto(tmp_path / "moto.log")
    outage = Outage(server.port)
    outage.up()
    try:
        yield server, outage
    finally:
        outage.down()
        server.stop()


def test_a_grab_waits_in_upload_pending_while_storage_is_down_and_completes_after(
    start_oven: StartOven, s3: tuple[MotoServer, Outage]
) -> None:
    _, outage = s3
    oven = _s3_oven(start_oven, outage)
    outage.down()
    accepted = submit(oven, piece="still", format="png", width=120, height=80)
    pending = wait_for_job(oven, accepted["id"], {"upload_pending"}, timeout=60)
    assert "upload" in (pending["error"] or "")
    assert metric(oven, "oven_upload_pending") == 1
    assert httpx.get(f"{oven.url}/grabs/{accepted['id']}/result").status_code == 409

    outage.up()
    done = wait_for_job(oven, accepted["id"], timeout=60)
    assert done["state"] == "complete"
    assert [h["state"] for h in done["history"]].count("complete") == 1
    # the capture's facts survive the outage: the result is what it would have been without it
    assert done["result"]["frames"] == 1 and done["result"]["ready"] == "contract"
    assert done["result"]["frozen"] is False and "capture" in done["timings"]
    assert metric(oven, "oven_upload_pending") == 0
    result = httpx.get(f"{oven.url}/grabs/{accepted['id']}/result", follow_redirects=True,
                       timeout=30)
    assert result.status_code == 200 and result.content[:8] == b"\x89PNG\r\n\x1a\n"


ADMIN = "parked-admin-token"


def _s3_oven(start_oven: StartOven, outage: Outage, **sections: dict[str, Any]) -> OvenProcess:
    endpoint = f"http://127.0.0.1:{outage.port}"
    return start_oven({
        "server": {"admin_token": ADMIN},
        "queue": {"upload_retry_s": 0.5},
        "storage": {"backend": "s3"},
        "storage.s3": {"endpoint_url": endpoint, "bucket": BUCKET, "region": "us-east-1",
                       "path_style": True, "create_bucket": True, "access_key_id": "testing",
                       "secret_access_key": "testing", "max_attempts": 1,
                       "connect_timeout_s": 1},
        **sections,
    })


def _parked(oven: OvenProcess, **body: Any) -> dict[str, Any]:
    """Submit a grab (storage is down) and wait until it is parked in upload_pending."""
    accepted = submit(oven, **body)
    wait_for_job(oven, accepted["id"], {"upload_pending"}, timeout=60)
    return accepted


def _pending_files(oven: OvenProcess) -> list[Path]:
    return sorted((oven.workdir / "data" / "pending").glob("*"))


def test_a_parked_job_cancelled_drops_its_file_and_caches_nothing_when_storage_returns(
    start_oven: StartOven, s3: tuple[MotoServer, Outage]
) -> None:
    # Failed before: the kept file stayed on disk for good.
    _, outage = s3
    oven = _s3_oven(start_oven, outage)
    outage.down()
    body = {"piece": "still", "format": "png", "width": 120, "height": 80}
    accepted = _parked(oven, **body)
    assert len(_pending_files(oven)) == 1
    cancelled = httpx.delete(f"{oven.url}/grabs/{accepted['id']}", timeout=30,
                             headers={"Authorization": f"Bearer {ADMIN}"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert _pending_files(oven) == []
    outage.up()
    time.sleep(2)  # four upload retry rounds: nothing left to upload or cache
    again = submit(oven, **body)
    assert again["cached"] is False and again["id"] != accepted["id"], again
    assert wait_for_job(oven, again["id"], timeout=60)["state"] == "complete"


def test_a_parked_upload_that_cannot_succeed_fails_its_job_and_the_others_go_on(
    start_oven: StartOven, s3: tuple[MotoServer, Outage]
) -> None:
    # Failed before: the retry loop died on the first job's error (removing its kept file after
    # the upload), so the second job never completed. The fault: the kept file of the first job
    # turned into a directory.
    _, outage = s3
    oven = _s3_oven(start_oven, outage)
    outage.down()
    first = _parked(oven, piece="still", format="png", width=120, height=80)
    second = _parked(oven, piece="still", format="png", width=100, height=80)
    kept = next(p for p in _pending_files(oven) if p.name.startswith(first["id"]))
    kept.unlink()
    kept.mkdir()
    outage.up()
    assert wait_for_job(oven, second["id"], timeout=60)["state"] == "complete"
    broken = wait_for_job(oven, first["id"], timeout=60)
    assert broken["state"] == "failed" and "Is a directory" in broken["error"], broken


def test_a_job_parked_by_an_instance_that_never_returns_is_captured_again_by_another(
    start_oven: StartOven, s3: tuple[MotoServer, Outage], tmp_path: Path
) -> None:
    # Failed before: the parked job held its capture key for good once its instance was gone.
    _, outage = s3
    shared = tmp_path / "shared"
    shared.mkdir()
    cluster = {"lease_s": 2, "heartbeat_s": 0.5, "poll_s": 0.2, "parked_takeover_s": 1}
    gone = _s3_oven(start_oven, outage, store={"sqlite_path": str(shared / "oven.db")},
                    cluster={**cluster, "instance_id": "gone"})
    outage.down()
    body = {"piece": "still", "format": "png", "width": 120, "height": 80}
    accepted = _parked(gone, **body)
    gone.kill()
    other = start_oven({"store": {"sqlite_path": str(shared / "oven.db")},
                        "cluster": {**cluster, "instance_id": "other"}})
    done = wait_for_job(other, accepted["id"], timeout=60)
    assert done["state"] == "complete", done
    notes = [h["note"] or "" for h in done["history"]]
    assert any("gone" in n and "captured again" in n for n in notes), notes
    # The capture key is free again: the same request is now a cache hit.
    assert submit(other, **body)["cached"] is True

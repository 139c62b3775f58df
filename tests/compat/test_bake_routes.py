"""The old service's tape bakes on a real `oven serve`: POST /bake answered at once, the old
callback body (signed like any oven webhook) once real ffmpeg has baked the fetched ZIP,
POST /bake-status and /bake-complete, and every hostile form of their input a 4xx JSON error."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from oven.webhooks import verify
from tests.bakes.bake_kit import ffprobe, frames, png_frame, rate, video_stream, zip_bytes
from tests.bakes.conftest import ArchiveServer
from tests.oven_process import OvenProcess, StartOven, free_port, running_oven
from tests.waiting import wait_until
from tests.webhooks.receiver import HANG, Receiver

SECRET = "old-callback-secret-0123"
HOOK_SECRET = "compat-hooks-secret-0123"
MAX_BODY_BYTES = 65536
FETCH_TIMEOUT_S = 8.0


@pytest.fixture(scope="module")
def archives() -> Iterator[ArchiveServer]:
    with ArchiveServer() as server:
        yield server


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


@pytest.fixture(scope="module")
def silent_origin() -> Iterator[str]:
    """A port that takes connections (the kernel's backlog) and never answers a byte: a zipUrl
    there is still being fetched until bakes.fetch_timeout_s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def bake_config(archives: ArchiveServer, receiver: Receiver,
                *origins: str) -> dict[str, dict[str, object]]:
    return {
        "server": {"max_body_bytes": MAX_BODY_BYTES},
        "encoder": {"concurrency": 1},
        "pieces": {"allowed_origins": [archives.origin, *origins], "allow_private": True},
        "webhooks": {"secret": HOOK_SECRET, "allow_private": True,
                     "allowed_origins": [receiver.origin], "initial_backoff_s": 0.2,
                     "max_backoff_s": 1.0},
        "bakes": {"max_frames": 60, "max_frame_pixels": 320 * 240,
                  "fetch_timeout_s": FETCH_TIMEOUT_S},
        "compat.bakes": {"callback_secret": SECRET},
    }


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory, archives: ArchiveServer,
         receiver: Receiver, silent_origin: str) -> Iterator[OvenProcess]:
    config = bake_config(archives, receiver, silent_origin)
    with running_oven(tmp_path_factory.mktemp("compat-bake-oven"), config,
                      port=free_port()) as oven:
        yield oven


_counter = iter(range(1_000_000))


def tape_names() -> dict[str, str]:
    n = next(_counter)
    return {"mongoId": f"65f0c0ffee{n:06d}", "slug": f"tape slug {n}", "code": f"tc{n}"}


def bake_body(archives: ArchiveServer, receiver: Receiver, names: dict[str, str], *,
              zip_url: str | None = None, **over: Any) -> dict[str, Any]:
    return {**names, "zipUrl": zip_url or f"{archives.origin}/{names['code']}.zip",
            "callbackUrl": receiver.url(f"/done/{names['code']}"), "callbackSecret": SECRET,
            "metadata": {"anything": ["the", "old", "uploader", "sends"]}, **over}


def post_bake(oven: OvenProcess, body: Any, **kw: Any) -> httpx.Response:
    return httpx.post(f"{oven.url}/bake", json=body, timeout=30, **kw)


def callback(receiver: Receiver, oven: OvenProcess, code: str) -> Any:
    try:
        got = wait_until(f"the callback for {code}",
                         lambda: receiver.received(f"/done/{code}"), timeout=180)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve.log tail ---\n{oven.log[-4000:]}") from None
    return got[0]


def status_of(oven: OvenProcess, **names: Any) -> httpx.Response:
    return httpx.post(f"{oven.url}/bake-status", json=names, timeout=10)


def test_a_bake_is_accepted_at_once_while_its_zip_is_still_being_fetched(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver,
        silent_origin: str) -> None:
    names = tape_names()
    body = bake_body(archives, receiver, names, zip_url=f"{silent_origin}/tape.zip")
    response = post_bake(oven, body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    assert {k: answer[k] for k in ("status", "slug", "code", "message")} == {
        "status": "accepted", "slug": names["slug"], "code": names["code"],
        "message": "Baking started"}
    # Answered while the zip is still being fetched: the fetch has seconds left to run.
    status = status_of(oven, code=names["code"])
    assert status.status_code == 200, status.text
    progress = status.json()
    assert progress["status"] == "ok"
    assert (progress["mongoId"], progress["slug"], progress["code"]) == (
        names["mongoId"], names["slug"], names["code"])
    assert progress["bake"]["id"] == answer["id"]
    assert (progress["bake"]["state"], progress["bake"]["stage"]) == ("queued", "fetching")
    # The fetch then gives up, and the old receiver hears it as an error.
    sent = json.loads(callback(receiver, oven, names["code"]).body)
    assert set(sent) == {"mongoId", "slug", "code", "secret", "error"}
    assert sent["secret"] == SECRET
    assert "bakes.fetch_timeout_s" in sent["error"]
    final = status_of(oven, mongoId=names["mongoId"]).json()["bake"]
    assert (final["state"], final["stage"]) == ("failed", "failed")


def test_a_baked_tape_calls_back_with_the_old_body_signed_like_every_oven_webhook(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver,
        tmp_path: Path) -> None:
    names = tape_names()
    # The old tape format: timing.json lists one object per frame with its duration in ms.
    timing = [{"frame": i, "duration": 100, "timestamp": i * 100} for i in range(12)]
    archives.files[f"/{names['code']}.zip"] = zip_bytes(
        {**frames(12), "timing.json": json.dumps(timing).encode()})
    response = post_bake(oven, bake_body(archives, receiver, names))
    assert response.status_code == 200, response.text
    got = callback(receiver, oven, names["code"])
    sent = json.loads(got.body)
    assert set(sent) == {"mongoId", "slug", "code", "mp4Url", "thumbnailUrl", "secret"}, sent
    assert {k: sent[k] for k in ("mongoId", "slug", "code", "secret")} == {**names,
                                                                           "secret": SECRET}
    assert verify(HOOK_SECRET, got.body, got.headers["X-Oven-Signature"])
    assert got.headers["X-Oven-Event"] == "bake"
    # Absolute URLs the receiver can download (local storage is served by oven itself).
    assert sent["mp4Url"].startswith(f"{oven.url}/")
    mp4 = httpx.get(sent["mp4Url"], timeout=30)
    assert mp4.status_code == 200
    (tmp_path / "tape.mp4").write_bytes(mp4.content)
    video = video_stream(ffprobe(tmp_path / "tape.mp4"))
    # Upscaled 3x nearest-neighbour like the old service's; 10 fps from the timing objects.
    assert (video["width"], video["height"]) == (192, 144)
    assert int(video["nb_read_frames"]) == 12
    assert rate(video["r_frame_rate"]) == pytest.approx(10.0)
    thumb = httpx.get(sent["thumbnailUrl"], timeout=30)
    assert thumb.status_code == 200
    (tmp_path / "thumb.jpg").write_bytes(thumb.content)
    with Image.open(tmp_path / "thumb.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (192, 144))
    final = status_of(oven, slug=names["slug"]).json()["bake"]
    assert (final["state"], final["stage"], final["fps_source"]) == (
        "complete", "complete", "timing")


def test_a_tape_that_cannot_be_baked_calls_back_with_the_reason_in_error(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver) -> None:
    names = tape_names()
    archives.files[f"/{names['code']}.zip"] = zip_bytes(
        {"frame-00000.png": png_frame(0), "frame-00001.png": b"GIF89a not a png at all"})
    assert post_bake(oven, bake_body(archives, receiver, names)).status_code == 200
    sent = json.loads(callback(receiver, oven, names["code"]).body)
    assert set(sent) == {"mongoId", "slug", "code", "secret", "error"}
    assert "frame-00001.png" in sent["error"] and "not a PNG" in sent["error"]


def test_a_zip_url_that_answers_404_calls_back_with_the_reason_in_error(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver) -> None:
    names = tape_names()  # nothing put at its path: the archive server answers 404
    assert post_bake(oven, bake_body(archives, receiver, names)).status_code == 200
    sent = json.loads(callback(receiver, oven, names["code"]).body)
    assert "HTTP 404" in sent["error"]


def _refusals(archives: ArchiveServer, receiver: Receiver) -> list[tuple[str, Any, int, str]]:
    def body(**over: Any) -> dict[str, Any]:
        return bake_body(archives, receiver, tape_names(), **over)

    missing = body()
    del missing["code"]
    no_secret = body()
    del no_secret["callbackSecret"]
    return [
        ("a missing field", missing, 400, "invalid"),
        ("no callbackSecret", no_secret, 401, "unauthorized"),
        ("a wrong callbackSecret", body(callbackSecret=SECRET + "x"), 401, "unauthorized"),
        ("a code with a path in it", body(code="../../etc"), 400, "invalid"),
        ("a code that is a number", body(code=123), 400, "invalid"),
        ("a huge code", body(code="c" * 10_000), 400, "invalid"),
        ("a mongoId with odd characters", body(mongoId="$where"), 400, "invalid"),
        ("a slug with a newline", body(slug="a\nb"), 400, "invalid"),
        ("a slug that is null", body(slug=None), 400, "invalid"),
        ("a zipUrl that is a list", body(zipUrl=["http://x"]), 400, "invalid"),
        ("a zipUrl on another origin", body(zipUrl="http://example.com/t.zip"), 403,
         "target_refused"),
        ("a file: zipUrl", body(zipUrl="file:///etc/passwd"), 403, "target_refused"),
        ("a zipUrl with userinfo tricks", body(zipUrl=f"http://a.example\\@{archives.origin[7:]}"
                                                      "/t.zip"), 403, "target_refused"),
        ("a callbackUrl on another origin", body(callbackUrl="http://example.com/hook"), 422,
         "callback_refused"),
        ("a javascript: callbackUrl", body(callbackUrl="javascript:alert(1)"), 422,
         "callback_refused"),
        ("a JSON array", [body()], 400, "bad_request"),
        ("a JSON string", "bake please", 400, "bad_request"),
    ]


def test_every_hostile_bake_request_is_a_4xx_json_error_and_starts_no_bake(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver) -> None:
    before = len(receiver.requests)
    bakes_before = httpx.get(f"{oven.url}/bakes", timeout=10).json()["bakes"]
    for what, body, status, code in _refusals(archives, receiver):
        response = post_bake(oven, body)
        assert response.status_code == status, (what, response.text)
        assert response.headers["content-type"] == "application/json", what
        assert response.json()["error"]["code"] == code, (what, response.text)
    raw = [
        ("not JSON", b"{mongoId:", "application/json", 400),
        ("NaN where a string goes", b'{"mongoId": NaN}', "application/json", 400),
        ("deeply nested JSON", b"[" * 60_000, "application/json", 400),
        ("a form body", b"mongoId=1", "application/x-www-form-urlencoded", 415),
        ("a body over server.max_body_bytes", b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}",
         "application/json", 413),
    ]
    for what, content, content_type, status in raw:
        response = httpx.post(f"{oven.url}/bake", content=content, timeout=30,
                              headers={"Content-Type": content_type})
        assert response.status_code == status, (what, response.text)
        assert "error" in response.json(), what
    for method in ("GET", "PUT", "DELETE"):
        response = httpx.request(method, f"{oven.url}/bake", timeout=10)
        assert response.status_code == 405, (method, response.text)
        assert response.json()["error"]["code"] == "method_not_allowed"
    # Nothing was recorded, and nobody was called back.
    assert httpx.get(f"{oven.url}/bakes", timeout=10).json()["bakes"] == bakes_before
    time.sleep(0.5)  # a callback, had one been started, would be on its way by now
    assert len(receiver.requests) == before


@pytest.mark.parametrize(("body", "status", "code"), [
    ({}, 400, "invalid"),
    ({"status": "syncing"}, 400, "invalid"),
    ({"code": 7}, 400, "invalid"),
    ({"code": ""}, 400, "invalid"),
    ({"code": "x" * 1000}, 400, "invalid"),
    ({"code": "never-baked"}, 404, "unknown_bake"),
    ({"mongoId": "../bakes/x"}, 404, "unknown_bake"),
    ({"id": "../../etc/passwd"}, 404, "unknown_bake"),
])
def test_bake_status_names_a_bake_or_answers_a_4xx_json_error(
        oven: OvenProcess, body: dict[str, Any], status: int, code: str) -> None:
    response = status_of(oven, **body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_the_old_receivers_notices_are_acknowledged_as_the_old_service_did(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver,
        silent_origin: str) -> None:
    names = tape_names()
    post_bake(oven, bake_body(archives, receiver, names, zip_url=f"{silent_origin}/t.zip"))
    # What the old receiver posts while it syncs, then when it is done.
    notice = status_of(oven, code=names["code"], status="syncing", details="Updating database")
    assert notice.status_code == 200, notice.text
    assert notice.json()["status"] == "ok"
    done = httpx.post(f"{oven.url}/bake-complete", timeout=10, json={
        "slug": names["slug"], "code": names["code"], "success": True,
        "mp4Url": "https://cdn.example/x.mp4", "thumbnailUrl": "https://cdn.example/x.jpg"})
    assert done.status_code == 200, done.text
    assert done.json() == {"status": "ok"}
    refused = httpx.post(f"{oven.url}/bake-complete", json={"success": False}, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid"


def test_without_a_configured_secret_post_bake_is_refused_as_disabled(
        start_oven: StartOven, archives: ArchiveServer, receiver: Receiver) -> None:
    config = bake_config(archives, receiver)
    del config["compat.bakes"]
    oven = start_oven(config)
    response = post_bake(oven, bake_body(archives, receiver, tape_names()))
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "disabled" and "[compat.bakes] callback_secret" in error["message"]


def test_a_callback_the_receiver_fails_is_retried_with_the_same_signed_body(
        oven: OvenProcess, archives: ArchiveServer, receiver: Receiver) -> None:
    names = tape_names()
    path = f"/done/{names['code']}"
    receiver.script(path, [503, 200])  # the old receiver down for a moment
    archives.files[f"/{names['code']}.zip"] = zip_bytes(frames(4))
    assert post_bake(oven, bake_body(archives, receiver, names)).status_code == 200
    attempts = wait_until("the callback to be tried twice",
                          lambda: len(got := receiver.received(path)) >= 2 and got, timeout=180)
    assert attempts[0].body == attempts[1].body
    assert [a.headers["X-Oven-Attempt"] for a in attempts[:2]] == ["1", "2"]
    assert all(verify(HOOK_SECRET, a.body, a.headers["X-Oven-Signature"]) for a in attempts)
    assert "mp4Url" in json.loads(attempts[1].body)


def test_a_bake_cut_short_by_a_crash_is_called_back_as_failed_when_oven_starts_again(
        tmp_path: Path, archives: ArchiveServer, receiver: Receiver,
        silent_origin: str) -> None:
    config = bake_config(archives, receiver, silent_origin)
    config["bakes"]["fetch_timeout_s"] = 600.0  # still fetching when the crash comes
    crashed = OvenProcess(tmp_path, config=config).start()
    names = tape_names()
    try:
        body = bake_body(archives, receiver, names, zip_url=f"{silent_origin}/t.zip")
        assert post_bake(crashed, body).status_code == 200
    finally:
        crashed.kill()
    again = OvenProcess(tmp_path, config=config, port=crashed.port).start()
    try:
        sent = json.loads(callback(receiver, again, names["code"]).body)
        assert set(sent) == {"mongoId", "slug", "code", "secret", "error"}
        assert "interrupted" in sent["error"]
        crashed.assert_no_leftovers()  # the new start swept what the crash left
    finally:
        assert again.stop() == 0


def test_a_bake_cut_short_by_a_stop_is_called_back_again_when_oven_starts_again(
        tmp_path: Path, archives: ArchiveServer, receiver: Receiver,
        silent_origin: str) -> None:
    config = bake_config(archives, receiver, silent_origin)
    config["bakes"]["fetch_timeout_s"] = 600.0  # still fetching when the stop comes
    stopped = OvenProcess(tmp_path, config=config).start()
    names = tape_names()
    path = f"/done/{names['code']}"
    # The receiver takes the callback sent while oven stops and never answers it: the
    # webhooks actor stops right after and records that delivery abandoned.
    receiver.script(path, [HANG, 200])
    try:
        body = bake_body(archives, receiver, names, zip_url=f"{silent_origin}/t.zip")
        assert post_bake(stopped, body).status_code == 200
    finally:
        assert stopped.stop() == 0
    assert len(receiver.received(path)) <= 1
    again = OvenProcess(tmp_path, config=config, port=stopped.port).start()
    try:
        answered = wait_until("the callback after the restart",
                              lambda: len(got := receiver.received(path)) >= 2 and got,
                              timeout=120)
        sent = json.loads(answered[-1].body)
        assert set(sent) == {"mongoId", "slug", "code", "secret", "error"}
        assert "interrupted" in sent["error"]
    finally:
        assert again.stop() == 0

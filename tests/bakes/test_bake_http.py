"""POST /bakes end to end on a real `oven serve`: real ffmpeg, ffprobe on what comes out."""

from __future__ import annotations

import concurrent.futures
import io
import itertools
import json
import os
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

from .bake_kit import (
    audio_streams,
    ffprobe,
    frames,
    png_frame,
    rate,
    tar_bytes,
    timing,
    video_stream,
    wav_bytes,
    zip_bytes,
    zip_with_symlink,
)
from .conftest import MAX_ACTIVE, MAX_ARCHIVE_BYTES, ArchiveServer, bake_section

FINAL = {"complete", "failed"}


def post_archive(oven: OvenProcess, data: bytes, *, filename: str = "tape.zip",
                 **fields: Any) -> httpx.Response:
    return httpx.post(f"{oven.url}/bakes", files={"archive": (filename, data)},
                      data={k: str(v) for k, v in fields.items()}, timeout=60)


def bake(oven: OvenProcess, bake_id: str) -> dict[str, Any]:
    response = httpx.get(f"{oven.url}/bakes/{bake_id}", timeout=10)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


def wait_for_bake(oven: OvenProcess, bake_id: str, *, timeout: float = 120) -> dict[str, Any]:
    try:
        view: dict[str, Any] = wait_until(
            f"bake {bake_id} to finish", lambda: (v := bake(oven, bake_id))["state"] in FINAL
            and v, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- serve.log tail ---\n{oven.log[-4000:]}") from None
    return view


def baked(oven: OvenProcess, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    view = wait_for_bake(oven, response.json()["id"])
    assert view["state"] == "complete", view
    return view


def download(oven: OvenProcess, url: str, path: Path) -> Path:
    response = httpx.get(f"{oven.url}{url}", timeout=30)
    assert response.status_code == 200, response.text
    path.write_bytes(response.content)
    return path


def test_a_tape_with_a_soundtrack_bakes_to_an_mp4_with_its_frames_fps_and_sound(
        bake_oven: OvenProcess, tmp_path: Path) -> None:
    archive = zip_bytes({**frames(24, noisy=True), "soundtrack.wav": wav_bytes(2.0)})
    assert len(archive) > 65536  # over server.max_body_bytes: /bakes has its own limit
    view = baked(bake_oven, post_archive(bake_oven, archive))
    assert (view["frames"], view["fps"], view["has_audio"]) == (24, 12.0, True)
    assert view["duration"] == pytest.approx(2.0)
    probe = ffprobe(download(bake_oven, view["url"], tmp_path / "tape.mp4"))
    video = video_stream(probe)
    assert int(video["nb_read_frames"]) == 24
    assert rate(video["r_frame_rate"]) == pytest.approx(12.0)
    assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
    assert (video["width"], video["height"]) == (64, 48)
    assert [a["codec_name"] for a in audio_streams(probe)] == ["aac"]
    thumb = Image.open(download(bake_oven, view["thumbnail_url"], tmp_path / "thumb.jpg"))
    assert (thumb.format, thumb.size) == ("JPEG", (64, 48))


def test_timing_json_sets_the_fps_of_a_raw_tar_upload(bake_oven: OvenProcess,
                                                      tmp_path: Path) -> None:
    archive = tar_bytes({**frames(10), **timing([200] * 10)})
    response = httpx.post(f"{bake_oven.url}/bakes", content=archive, timeout=60,
                          headers={"Content-Type": "application/x-tar"})
    view = baked(bake_oven, response)
    assert (view["fps"], view["fps_source"], view["has_audio"]) == (5.0, "timing", False)
    probe = ffprobe(download(bake_oven, view["url"], tmp_path / "tape.mp4"))
    assert rate(video_stream(probe)["r_frame_rate"]) == pytest.approx(5.0)
    assert int(video_stream(probe)["nb_read_frames"]) == 10
    assert audio_streams(probe) == []


def test_an_upscaled_bake_is_nearest_neighbour_and_padded_to_even_sides(
        bake_oven: OvenProcess, tmp_path: Path) -> None:
    view = baked(bake_oven, post_archive(bake_oven, zip_bytes(frames(4, (63, 47))), scale=3))
    video = video_stream(ffprobe(download(bake_oven, view["url"], tmp_path / "tape.mp4")))
    assert (video["width"], video["height"]) == (190, 142)  # 189x141 padded for yuv420p
    assert (view["width"], view["height"], view["scale"]) == (190, 142, 3)
    thumb = Image.open(download(bake_oven, view["thumbnail_url"], tmp_path / "thumb.jpg"))
    assert thumb.size == (189, 141)


def _bomb() -> bytes:
    return zip_bytes({**frames(1), "soundtrack.wav": b"\0" * 900_000},
                     compression=zipfile.ZIP_DEFLATED)


def _over_total() -> bytes:
    # 4 bits of entropy a byte: deflates only ~2x, so no ratio rule fires, yet five members
    # unpack past max_total_bytes while the archive stays under max_archive_bytes.
    nibbles = bytes(b & 15 for b in range(256))
    return zip_bytes({f"frame-{i:05d}.png": png_frame(i) + os.urandom(900_000).translate(nibbles)
                      for i in range(5)}, compression=zipfile.ZIP_DEFLATED)


def _not_an_archive() -> bytes:
    return png_frame(0)


MALICIOUS = {
    "zip_slip": (lambda: zip_bytes({**frames(1), "../x.png": png_frame(1)}),
                 422, "unsafe_path", ".."),
    "absolute_path": (lambda: tar_bytes({**frames(1), "/etc/frame-00001.png": png_frame(1)}),
                      422, "unsafe_path", 'absolute'),
    "tar_symlink": (lambda: tar_bytes(frames(1), symlinks={"frame-00001.png": "/etc/passwd"}),
                    422, "unsafe_path", '/etc/passwd'),
    "zip_symlink": (lambda: zip_with_symlink(frames(1), "frame-00001.png", "/etc/passwd"),
                    422, "unsafe_path", 'symbolic link'),
    "zip_bomb_ratio": (_bomb, 422, "zip_bomb", 'max_ratio'),
    "total_size": (_over_total, 413, "too_large", 'max_total_bytes'),
    "non_png_member": (lambda: zip_bytes({**frames(1), "frame-00001.png": b"GIF89a" * 20}),
                       422, "not_png", 'frame-00001.png'),
    "oversize_frame": (lambda: zip_bytes({"frame-00000.png": png_frame(0, (400, 300))}),
                       422, "frame_too_large", '400x300'),
    "too_many_frames": (lambda: zip_bytes(frames(61, (8, 8))),
                        422, "too_many_frames", "max_frames"),
    "not_an_archive": (_not_an_archive, 422, "not_an_archive", 'ZIP or tar'),
}


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_a_malicious_archive_is_refused_with_a_4xx_naming_the_problem(
        bake_oven: OvenProcess, case: str) -> None:
    make, status, code, hint = MALICIOUS[case]
    response = post_archive(bake_oven, make())
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert hint in error["message"], error
    assert not (bake_oven.workdir / "data" / "x.png").exists()


def test_an_archive_over_the_upload_limit_is_refused_while_it_streams(
        bake_oven: OvenProcess) -> None:
    # Chunked (no Content-Length), so the limit is enforced on the bytes as they arrive.
    def body() -> Any:
        chunk = b"\0" * 65536
        for _ in range(MAX_ARCHIVE_BYTES // len(chunk) + 4):
            yield chunk

    before = len(httpx.get(f"{bake_oven.url}/bakes?limit=1000", timeout=10).json()["bakes"])
    try:
        response: httpx.Response | None = httpx.post(
            f"{bake_oven.url}/bakes", content=body(), timeout=60,
            headers={"Content-Type": "application/zip"})
    except httpx.HTTPError:
        # The server answered and closed while the client was still sending: the answer is
        # lost with the connection, so only what follows below can be checked then.
        response = None
    if response is not None:
        assert response.status_code == 413, response.text
        assert "max_archive_bytes" in response.json()["error"]["message"]
    # Either way nothing was admitted and the service still answers.
    after = httpx.get(f"{bake_oven.url}/bakes?limit=1000", timeout=10).json()["bakes"]
    assert len(after) == before


def test_bad_options_are_refused_before_baking(bake_oven: OvenProcess) -> None:
    archive = zip_bytes(frames(2))
    scale = post_archive(bake_oven, archive, scale=9)
    unknown = post_archive(bake_oven, archive, speed=2)
    nothing = httpx.post(f"{bake_oven.url}/bakes", json={}, timeout=10)
    assert (scale.status_code, unknown.status_code, nothing.status_code) == (422, 422, 422)
    assert scale.json()["error"]["message"].startswith("scale")
    assert "archive" in nothing.json()["error"]["message"]


def test_a_url_on_an_allowed_origin_is_fetched_and_baked(
        bake_oven: OvenProcess, archive_server: ArchiveServer) -> None:
    archive_server.files["/tape.zip"] = zip_bytes(frames(6))
    response = httpx.post(f"{bake_oven.url}/bakes", timeout=60,
                          json={"url": f"{archive_server.origin}/tape.zip", "scale": 2})
    view = baked(bake_oven, response)
    assert (view["frames"], view["width"], view["source"]) == (
        6, 128, f"{archive_server.origin}/tape.zip")


def test_a_url_off_the_allowed_origins_or_missing_is_refused(
        bake_oven: OvenProcess, archive_server: ArchiveServer) -> None:
    off = httpx.post(f"{bake_oven.url}/bakes", json={"url": "http://example.invalid/t.zip"},
                     timeout=30)
    missing = httpx.post(f"{bake_oven.url}/bakes", timeout=30,
                         json={"url": f"{archive_server.origin}/nothing.zip"})
    assert off.status_code == 403 and off.json()["error"]["code"] == "target_refused"
    assert missing.status_code == 422 and "404" in missing.json()["error"]["message"]


def test_unknown_bakes_are_404_and_the_list_is_newest_first(bake_oven: OvenProcess) -> None:
    first = baked(bake_oven, post_archive(bake_oven, zip_bytes(frames(2))))
    second = baked(bake_oven, post_archive(bake_oven, zip_bytes(frames(3))))
    listed = httpx.get(f"{bake_oven.url}/bakes", params={"limit": 2}, timeout=10).json()
    assert [b["id"] for b in listed["bakes"]] == [second["id"], first["id"]]
    missing = httpx.get(f"{bake_oven.url}/bakes/0123456789abcdef", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    paths = httpx.get(f"{bake_oven.url}/openapi.json", timeout=10).json()["paths"]
    assert {"post", "get"} <= set(paths["/bakes"]) and "get" in paths["/bakes/{bake_id}"]


def test_a_burst_of_bakes_queues_behind_one_ffmpeg_and_the_overflow_gets_429(
        bake_oven: OvenProcess) -> None:
    archive = zip_bytes(frames(40, (320, 240), noisy=True))
    # The burst's bodies are held open, their last bytes unsent, until the overflow has its
    # answer: posted one after another, the first bake could finish before the last POST on a
    # busy machine, and the overflow was then rightly admitted (a fresh-clone run saw 202).
    release = threading.Event()

    def held_body() -> Any:
        yield archive[:-16]
        release.wait(1.5)  # under the server's upload_idle_s: a pause, not a stalled upload
        yield archive[-16:]

    def post_held() -> httpx.Response:
        return httpx.post(f"{bake_oven.url}/bakes", content=held_body(), timeout=60,
                          headers={"Content-Type": "application/zip"})

    with concurrent.futures.ThreadPoolExecutor(MAX_ACTIVE) as pool:
        posts = [pool.submit(post_held) for _ in range(MAX_ACTIVE)]
        wait_until("the burst's places reserved",
                   lambda: bake_section(bake_oven)["receiving"] == MAX_ACTIVE, timeout=10,
                   interval=0.02)
        overflow = post_archive(bake_oven, archive)
        release.set()
        answers = [post.result() for post in posts]
    assert [a.status_code for a in answers] == [202] * MAX_ACTIVE, [a.text for a in answers]
    ids = [a.json()["id"] for a in answers]
    assert bake_oven.proc is not None
    oven_proc = psutil.Process(bake_oven.proc.pid)
    most = 0
    seen = 0
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ffmpegs = [p for p in oven_proc.children(recursive=True) if _is_ffmpeg(p)]
        most = max(most, len(ffmpegs))
        seen += bool(ffmpegs)
        if all(bake(bake_oven, i)["state"] in FINAL for i in ids):
            break
        time.sleep(0.02)  # sampling interval, not a synchronisation
    views = [bake(bake_oven, i) for i in ids]
    assert [v["state"] for v in views] == ["complete"] * MAX_ACTIVE, views
    assert overflow.status_code == 429, overflow.text
    assert int(overflow.headers["Retry-After"]) >= 1
    assert "max_active" in overflow.json()["error"]["message"]
    assert seen > 0, "never saw an ffmpeg running: the sampling proves nothing"
    assert most == 1, f"{most} ffmpegs ran at once with [encoder] concurrency = 1"
    # Queued really queues: each bake started after the one before it finished.
    for before, after in itertools.pairwise(sorted(views, key=lambda v: v["started_at"])):
        assert after["started_at"] >= before["finished_at"] - 0.5, (before, after)
    work = bake_oven.workdir / "data" / "bakes"
    assert wait_until("bake work dirs to be removed",
                      lambda: not work.exists() or not any(work.iterdir()), timeout=10)


def test_a_finished_bake_is_posted_to_its_callback_url(
        bake_oven: OvenProcess, archive_server: ArchiveServer) -> None:
    hook = f"{archive_server.origin}/hooks/bake"
    view = baked(bake_oven, post_archive(bake_oven, zip_bytes(frames(2)), callback_url=hook))
    body = wait_until("the bake's callback", lambda: archive_server.posted.get("/hooks/bake"),
                      timeout=30)[0]
    payload = json.loads(body)
    assert payload["id"] == view["id"] and payload["state"] == "complete"
    assert payload["url"] == view["url"] and payload["error"] is None
    refused = post_archive(bake_oven, zip_bytes(frames(2)), callback_url="file:///etc/passwd")
    assert refused.status_code == 422 and "callback_url" in refused.json()["error"]["message"]


def _is_ffmpeg(proc: psutil.Process) -> bool:
    try:
        return proc.name() == "ffmpeg"
    except psutil.Error:
        return False


def test_many_small_uploads_leave_nothing_behind(bake_oven: OvenProcess) -> None:
    data = io.BytesIO(zip_bytes(frames(1)))
    for _ in range(3):
        response = post_archive(bake_oven, data.getvalue(), filename="x.zip")
        wait_for_bake(bake_oven, response.json()["id"])
    work = bake_oven.workdir / "data" / "bakes"
    assert wait_until("bake work dirs to be removed",
                      lambda: not work.exists() or not any(work.iterdir()), timeout=10)

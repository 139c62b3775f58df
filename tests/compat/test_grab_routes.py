"""The old grab routes against a real `oven serve`: GET /grab/{format}/{w}/{h}/{piece} with the
old parameters, nowait placeholders, cacheKey, skipCache, source, and POST /grab."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.encode.test_playback_durations import gif_frame_cs, webp_frame_ms
from tests.oven_process import OvenProcess, StartOven, running_oven
from tests.pipeline.grab_client import job, submit, wait_for_job
from tests.waiting import wait_until

ADMIN_TOKEN = "compat-grabs-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    config: dict[str, dict[str, Any]] = {
        "server": {"admin_token": ADMIN_TOKEN},
        "browser": {"pages": 2},
        "pieces": {"code_template": "http://pieces.oven.internal/{code}/"},
        "edge": {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000},
    }
    with running_oven(tmp_path_factory.mktemp("compat-grabs"), config) as oven:
        yield oven


def get(oven: OvenProcess, path: str, *, timeout: float = 90, **kw: Any) -> httpx.Response:
    return httpx.get(f"{oven.url}{path}", timeout=timeout, **kw)


def cancel(oven: OvenProcess, job_id: str) -> None:
    httpx.delete(f"{oven.url}/grabs/{job_id}", headers=ADMIN, timeout=30)


def test_get_grab_answers_an_animated_gif_of_duration_ms_at_fps(oven: OvenProcess) -> None:
    response = get(oven, "/grab/gif/96/64/anim?duration=2000&fps=5")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/gif"
    assert response.headers["x-cache"] == "MISS" and response.headers["x-grab-id"]
    assert response.headers["cache-control"] == "public, max-age=3600"
    with Image.open(io.BytesIO(response.content)) as gif:
        assert (gif.n_frames, gif.size) == (10, (96, 64))


def test_get_grab_takes_the_old_defaults_of_12_s_at_7_fps_played_at_15(
        oven: OvenProcess) -> None:
    # The old routes wrote 7.5 and read it with parseInt: 84 frames, played at 15 fps.
    response = get(oven, "/grab/webp/97/64/anim?nowait=1", timeout=30)
    assert response.status_code == 202, response.text
    view = job(oven, response.json()["id"])
    cancel(oven, view["id"])
    request = view["request"]
    assert (request["frames"], request["fps"], request["playback_fps"]) == (84, 7, 15)


def test_a_repeated_get_grab_is_a_cache_hit_answered_with_the_bytes(oven: OvenProcess) -> None:
    first = get(oven, "/grab/png/98/64/still")
    again = get(oven, "/grab/png/98/64/still")
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
    assert again.headers["content-type"] == "image/png"
    assert again.headers["cache-control"] == "public, max-age=86400"
    assert again.content == first.content


@pytest.mark.parametrize("fmt, pil_format, content_type", [
    ("png", "PNG", "image/png"), ("webp", "WEBP", "image/webp"), ("gif", "GIF", "image/gif"),
    ("jpeg", "JPEG", "image/jpeg")])
def test_nowait_true_answers_a_placeholder_image_of_the_size_and_format_asked(
        oven: OvenProcess, fmt: str, pil_format: str, content_type: str) -> None:
    width = {"png": 201, "webp": 202, "gif": 203, "jpeg": 204}[fmt]
    response = get(oven, f"/grab/{fmt}/{width}/99/anim?nowait=true&duration=3000&fps=5",
                   timeout=30)
    grab_id = response.headers.get("x-grab-id", "")
    if grab_id:
        cancel(oven, grab_id)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.headers["x-oven-status"] == "baking"
    assert response.headers["cache-control"] == "no-store"
    assert int(response.headers["x-queue-position"]) >= 0
    assert int(response.headers["x-estimated-wait"]) >= 0
    assert len(grab_id) == 32
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.format, image.size) == (pil_format, (width, 99))


def test_nowait_true_while_the_pages_are_busy_says_where_the_grab_stands(
        oven: OvenProcess) -> None:
    # Two long grabs hold both pages; the placeholder's grab is then first in the queue.
    blockers = [submit(oven, piece="anim", format="webp", width=220 + i, height=64,
                       frames=60, fps=10, clock="real") for i in range(2)]
    try:
        wait_until("both blockers to hold a page", lambda: all(
            job(oven, b["id"])["state"] == "running" for b in blockers), timeout=60,
            interval=0.05)
        response = get(oven, "/grab/png/222/64/still?nowait=true", timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["x-oven-status"] == "baking"
        assert response.headers["x-queue-position"] == "1"
        assert int(response.headers["x-estimated-wait"]) > 0
        queued = job(oven, response.headers["x-grab-id"])
        assert (queued["state"], queued["position"]) == ("queued", 1)
    finally:
        for blocker in blockers:
            cancel(oven, blocker["id"])
    assert wait_for_job(oven, queued["id"])["state"] == "complete"


def test_nowait_true_on_an_mp4_answers_the_job_json_with_the_baking_headers(
        oven: OvenProcess) -> None:
    response = get(oven, "/grab/mp4/206/98/anim?nowait=true&duration=2000&fps=5", timeout=30)
    cancel(oven, response.headers["x-grab-id"])
    assert response.status_code == 202, response.text
    assert response.headers["x-oven-status"] == "baking"
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["id"] == response.headers["x-grab-id"]


def test_nowait_true_on_a_cached_grab_answers_the_bytes_themselves(oven: OvenProcess) -> None:
    assert get(oven, "/grab/png/99/64/still").status_code == 200
    response = get(oven, "/grab/png/99/64/still?nowait=true", timeout=30)
    assert response.status_code == 200, response.text
    assert "x-oven-status" not in response.headers
    assert response.headers["x-cache"] == "HIT"
    with Image.open(io.BytesIO(response.content)) as png:
        assert png.size == (99, 64)


def test_a_new_cache_key_captures_again_and_the_same_one_is_cached(oven: OvenProcess) -> None:
    answers = [get(oven, f"/grab/png/100/64/still?cacheKey={key}")
               for key in ("v1", "v2", "v1")]
    assert [a.status_code for a in answers] == [200, 200, 200], answers[-1].text
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "MISS", "HIT"]
    assert answers[0].headers["x-grab-id"] != answers[1].headers["x-grab-id"]


def test_skip_cache_captures_again_at_most_once_a_minute_unless_the_admin_asks(
        oven: OvenProcess) -> None:
    path = "/grab/png/101/64/still"
    assert get(oven, path).headers["x-cache"] == "MISS"
    assert get(oven, path).headers["x-cache"] == "HIT"
    forced = get(oven, f"{path}?skipCache=true")
    assert forced.status_code == 200 and forced.headers["x-cache"] == "MISS"
    # Anyone may send skipCache: a second one within the interval is answered from the cache.
    assert get(oven, f"{path}?skipCache=true").headers["x-cache"] == "HIT"
    admin = get(oven, f"{path}?skipCache=true", headers=ADMIN)
    assert admin.status_code == 200 and admin.headers["x-cache"] == "MISS"


@pytest.mark.parametrize("source, lane", [("keep", "interactive"), ("news", "background"),
                                          ("manual", "background"), ("api", "background")])
def test_a_keep_takes_the_interactive_lane_and_other_sources_the_background(
        oven: OvenProcess, source: str, lane: str) -> None:
    response = get(oven, f"/grab/webp/107/64/anim?nowait=1&duration=1000&fps=5&source={source}",
                   timeout=30)
    assert response.status_code == 202, response.text
    view = job(oven, response.json()["id"])
    cancel(oven, view["id"])
    assert view["lane"] == lane


def test_post_grab_answers_the_bytes_and_then_the_cached_bytes(oven: OvenProcess) -> None:
    body = {"piece": "still", "format": "png", "width": 102, "height": 64}
    first = httpx.post(f"{oven.url}/grab", json=body, timeout=90)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/png"
    assert first.headers["x-cache"] == "MISS"
    # Local storage has no public URL: a hit is the bytes, with or without Origin.
    for headers in ({}, {"Origin": "https://kidlisp.example"}):
        hit = httpx.post(f"{oven.url}/grab", json=body, timeout=30, headers=headers)
        assert hit.status_code == 200 and hit.headers["x-cache"] == "HIT"
        assert hit.content == first.content


def test_post_grab_takes_a_kidlisp_code_and_the_old_defaults(oven: OvenProcess) -> None:
    response = httpx.post(f"{oven.url}/grab", timeout=90, json={
        "piece": "$anim", "width": 64, "height": 64, "duration": 1000, "fps": 4,
        "density": 1, "quality": 80, "skipCache": False, "source": "manual"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"  # the old default format
    with Image.open(io.BytesIO(response.content)) as webp:
        assert (webp.n_frames, webp.size) == (4, (64, 64))


def test_a_png_grab_ignores_the_quality_the_old_clients_always_sent(oven: OvenProcess) -> None:
    response = get(oven, "/grab/png/103/64/still?quality=80")
    assert response.status_code == 200, response.text


# -- hostile input: each a 4xx JSON error naming what is wrong --------------------------------

HOSTILE_GETS = [
    ("/grab/png/abc/64/still", 422, "width"), ("/grab/png/0/64/still", 422, "width"),
    ("/grab/png/31/64/still", 422, "width"), ("/grab/png/64/1001/still", 422, "height"),
    ("/grab/png/99999999999999/64/still", 422, "width"), ("/grab/png/1e3/64/still", 422, "width"),
    ("/grab/png/-64/64/still", 422, "width"), ("/grab/png/64.0/64/still", 422, "width"),
    ("/grab/bmp/64/64/still", 422, "format"), ("/grab/png/64/64/%2e%2e", 422, "piece"),
    ("/grab/gif/64/64/anim?duration=nan", 422, "duration"),
    ("/grab/gif/64/64/anim?duration=inf", 422, "duration"),
    ("/grab/gif/64/64/anim?duration=-5", 422, "duration"),
    ("/grab/gif/64/64/anim?duration=0", 422, "duration"),
    ("/grab/gif/64/64/anim?duration=1e308", 422, "duration"),
    ("/grab/gif/64/64/anim?duration=" + "9" * 400, 422, "duration"),
    ("/grab/gif/64/64/anim?fps=NaN", 422, "fps"), ("/grab/gif/64/64/anim?fps=0", 422, "fps"),
    ("/grab/gif/64/64/anim?fps=1e9", 422, "fps"),
    ("/grab/png/64/64/still?density=nan", 422, "density"),
    ("/grab/png/64/64/still?density=99", 422, "density"),
    ("/grab/png/64/64/still?density=0.5", 422, "density"),
    ("/grab/webp/64/64/anim?quality=0", 422, "quality"),
    ("/grab/webp/64/64/anim?quality=high", 422, "quality"),
    ("/grab/png/64/64/still?skipCache=maybe", 422, "skipCache"),
    ("/grab/png/64/64/still?cacheKey=a/b", 422, "cacheKey"),
    ("/grab/png/64/64/still?cacheKey=" + "a" * 129, 422, "cacheKey"),
    ("/grab/png/64/64/still?cacheKey=%7Bpiece%7D", 422, "cacheKey"),
    ("/grab/png/64/64/still?source=vip", 422, "source"),
    ("/grab/png/64/64/still?nowait=soon", 422, "nowait"),
    ("/grab/png/64/64/still?frames=2", 422, "format"),
    ("/grab/gif/64/64/anim?duration=600000", 422, "frames"),  # 4500 frames: [limits]
]


@pytest.mark.parametrize("path, status, named", HOSTILE_GETS)
def test_hostile_get_grabs_are_4xx_json_naming_the_parameter(
        oven: OvenProcess, path: str, status: int, named: str) -> None:
    response = get(oven, path, timeout=30)
    assert response.status_code == status, response.text
    assert named in response.json()["error"]["message"]


HOSTILE_BODIES: list[tuple[Any, int, str]] = [
    ({"format": "png"}, 422, "piece"), ({"piece": 7}, 422, "piece"),
    ({"piece": "still", "width": True}, 422, "width"),
    ({"piece": "still", "width": "wide"}, 422, "width"),
    ({"piece": "still", "width": 10**30}, 422, "width"),
    ({"piece": "still", "width": 12.5}, 422, "width"),
    ({"piece": "still", "height": None}, 422, "height"),
    ({"piece": "still", "format": ["png"]}, 422, "format"),
    ({"piece": "still", "format": "svg"}, 422, "format"),
    ({"piece": "anim", "fps": "NaN"}, 422, "fps"),
    ({"piece": "anim", "duration": {"ms": 5}}, 422, "duration"),
    ({"piece": "still", "format": "png", "skipCache": "perhaps"}, 422, "skipCache"),
    ({"piece": "still", "format": "png", "cacheKey": 5}, 422, "cacheKey"),
    ({"piece": "still", "format": "png", "source": {"x": 1}}, 422, "source"),
    ({"piece": "../../etc/passwd", "format": "png"}, 422, "piece"),
    ({"piece": "${piece.__class__}", "format": "png"}, 422, "piece"),
    ([1, 2], 422, "object"), ("just a string", 422, "object"),
]


@pytest.mark.parametrize("body, status, named", HOSTILE_BODIES)
def test_hostile_post_grab_bodies_are_4xx_json_naming_the_field(
        oven: OvenProcess, body: Any, status: int, named: str) -> None:
    response = httpx.post(f"{oven.url}/grab", json=body, timeout=30)
    assert response.status_code == status, response.text
    assert named in response.json()["error"]["message"]


def test_post_grab_refuses_what_is_not_json(oven: OvenProcess) -> None:
    not_json = httpx.post(f"{oven.url}/grab", content=b"{nope", timeout=30,
                          headers={"content-type": "application/json"})
    form = httpx.post(f"{oven.url}/grab", data={"piece": "still"}, timeout=30)
    nan = httpx.post(f"{oven.url}/grab", content=b'{"piece": "anim", "fps": NaN}', timeout=30,
                     headers={"content-type": "application/json"})
    deep = httpx.post(f"{oven.url}/grab", content=b"[" * 50_000, timeout=30,
                      headers={"content-type": "application/json"})
    assert [r.status_code for r in (not_json, form, nan)] == [400, 415, 422]
    assert deep.status_code in (400, 413), deep.text
    assert all("error" in r.json() for r in (not_json, form, nan, deep))


@pytest.mark.parametrize("method, path", [("PUT", "/grab"), ("GET", "/grab"),
                                          ("DELETE", "/grab/png/64/64/still"),
                                          ("POST", "/grab/png/64/64/still")])
def test_wrong_methods_are_405_json(oven: OvenProcess, method: str, path: str) -> None:
    response = httpx.request(method, f"{oven.url}{path}", timeout=30)
    assert response.status_code == 405, response.text
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_nothing_failed_inside_the_service(oven: OvenProcess) -> None:
    assert "unhandled error" not in oven.log
    assert "Traceback" not in oven.log


# -- playbackFps and viewportScale: the old names of oven's playback_fps and viewport_scale ---


def test_playback_fps_plays_the_frames_captured_at_fps_faster(oven: OvenProcess,
                                                             tmp_path: Path) -> None:
    response = get(oven, "/grab/webp/64/64/anim?duration=2000&fps=5&playbackFps=10")
    assert response.status_code == 200, response.text
    path = tmp_path / "lapse.webp"
    path.write_bytes(response.content)
    durations = webp_frame_ms(path)
    assert len(durations) == 10  # 2 s of page time at 5 fps
    assert abs(sum(durations) - 1000) <= 1, durations  # played at 10 fps: 1 s


def test_post_grab_takes_playback_fps_and_viewport_scale(oven: OvenProcess,
                                                         tmp_path: Path) -> None:
    response = httpx.post(f"{oven.url}/grab", timeout=90, json={
        "piece": "anim", "format": "gif", "width": 96, "height": 64, "duration": 1000,
        "fps": 4, "playbackFps": 8, "viewportScale": 2})
    assert response.status_code == 200, response.text
    path = tmp_path / "lapse.gif"
    path.write_bytes(response.content)
    delays = gif_frame_cs(path)  # centiseconds: 1/8 s each rounds to 12 or 13
    assert len(delays) == 4 and sum(delays) == 50 and set(delays) <= {12, 13}, delays
    with Image.open(path) as gif:
        assert gif.size == (96, 64)  # an animation is width * density, whatever its scale


def test_a_still_s_viewport_scale_is_the_old_output_size_in_art_pixels(
        oven: OvenProcess) -> None:
    # The old still was width * viewportScale pixels of a page laid out at width CSS px.
    response = get(oven, "/grab/png/128/96/anim?nowait=1&viewportScale=4", timeout=30)
    assert response.status_code in (200, 202), response.text
    if response.status_code == 202:
        request = job(oven, response.json()["id"])["request"]
        assert (request["width"], request["height"], request["viewport_scale"]) == (512, 384, 4)
    done = get(oven, "/grab/png/128/96/anim?viewportScale=4")
    assert done.status_code == 200, done.text
    with Image.open(io.BytesIO(done.content)) as png:
        assert png.size == (512, 384)
        pixels = png.convert("RGB").load()
        for x in range(0, 512, 4):  # every art pixel is one 4x4 block of one colour
            for y in range(0, 384, 4):
                block = {pixels[x + i, y + j] for i in range(4) for j in range(4)}
                assert len(block) == 1, (x, y, block)


@pytest.mark.parametrize("query, named", [
    ("viewportScale=0", "viewportScale"), ("viewportScale=abc", "viewportScale"),
    ("viewportScale=99", "viewportScale"), ("viewportScale=-2", "viewportScale"),
    ("viewportScale=2.5", "viewportScale"), ("playbackFps=nan", "playbackFps"),
    ("playbackFps=0", "playback_fps"), ("playbackFps=1e9", "playback_fps"),
])
def test_hostile_playback_fps_and_viewport_scale_are_422_json(
        oven: OvenProcess, query: str, named: str) -> None:
    response = get(oven, f"/grab/webp/64/64/anim?duration=1000&fps=4&{query}", timeout=30)
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]["message"]


def test_with_compat_off_the_grab_routes_are_ovens_own(start_oven: StartOven) -> None:
    own = start_oven({"compat": {"enabled": False}, "browser": {"pages": 1}})
    assert httpx.post(f"{own.url}/grab", json={"piece": "still"}, timeout=30).status_code == 404
    response = httpx.get(f"{own.url}/grab/png/64/64/still?nowait=true", timeout=30)
    assert response.status_code in (200, 202), response.text
    assert "x-oven-status" not in response.headers  # oven's reading: no placeholder
    assert httpx.get(f"{own.url}/icon/64x64/still.png", timeout=30).status_code == 404
    assert httpx.get(f"{own.url}/api/frozen", timeout=30).status_code == 404

"""The old grab parameters read as the old service read them, through a real `oven serve`: the
output's pixel size and how long it plays, for several old parameter combinations.

What the old service did (its grabber.mjs and server.mjs): the routes parsed `fps` with
parseInt (7.5 became 7), never read `playbackFps` or `viewportScale`, and grabPiece played every
animation at playbackFps 15; the page was laid out at width x height CSS px at a device scale
factor of viewportScale ?? density, the piece's URL carried `density`, and the output was
width * (viewportScale ?? density) for a still, width * density for an animation.
"""

from __future__ import annotations

import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.encode.test_playback_durations import webp_frame_ms
from tests.oven_process import OvenProcess, running_oven
from tests.pipeline.grab_client import job
from tests.security.servers import RecordingServer, Reply

ADMIN_TOKEN = "compat-old-params-admin-token"

# What a code's URL serves: a 4-colour checkerboard of 8 CSS px squares whose colours turn at
# each animation frame (so no two frames in a row are alike), ready once painted.
PAGE = b"""<!doctype html><body style="margin:0;background:#123"><canvas id="c" width="64"
height="64"></canvas><script>const g = document.getElementById("c").getContext("2d");
const colours = ["#e40", "#0a4", "#24e", "#ee0"];
let turn = 0;
requestAnimationFrame(function draw() {
  turn += 1;
  for (let x = 0; x < 8; x++) for (let y = 0; y < 8; y++) {
    g.fillStyle = colours[(x + 2 * y + turn) % 4]; g.fillRect(8 * x, 8 * y, 8, 8); }
  window.ovenReady = true; requestAnimationFrame(draw); });</script>"""


@pytest.fixture(scope="module")
def code_server() -> Iterator[RecordingServer]:
    with RecordingServer(lambda host, path: Reply(body=PAGE)).running() as server:
        yield server


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory,
         code_server: RecordingServer) -> Iterator[OvenProcess]:
    template = f"http://127.0.0.1:{code_server.port}/k/{{code}}?density={{density}}&tv"
    config: dict[str, dict[str, Any]] = {
        "server": {"admin_token": ADMIN_TOKEN},
        "browser": {"pages": 2},
        "pieces": {"code_template": template},
        "edge": {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000},
    }
    with running_oven(tmp_path_factory.mktemp("compat-old-params"), config) as oven:
        yield oven


def get(oven: OvenProcess, path: str, *, timeout: float = 120) -> httpx.Response:
    return httpx.get(f"{oven.url}{path}", timeout=timeout)


def size_of(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def webp_ms(data: bytes, tmp_path: Path) -> list[int]:
    path = tmp_path / "out.webp"
    path.write_bytes(data)
    return webp_frame_ms(path)


def ffprobe_duration(data: bytes, tmp_path: Path, suffix: str) -> float:
    path = tmp_path / f"out.{suffix}"
    path.write_bytes(data)
    done = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of",
                           "json", str(path)], capture_output=True, check=True, timeout=30)
    return float(json.loads(done.stdout)["format"]["duration"])


def played_at_15(durations: list[int]) -> None:
    """Each frame 1/15 s to the millisecond; the whole file within 2 ms of n / 15 s (libwebp
    cuts the last frame to the millisecond, and 2 ms tell 15 fps from 7.5 or 7 well enough)."""
    assert set(durations) <= {66, 67}, durations
    assert abs(sum(durations) - len(durations) * 1000 / 15) < 2, durations


def one_colour_blocks(data: bytes, block: int) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        pixels = rgb.load()
        return all(len({pixels[x + i, y + j] for i in range(block) for j in range(block)}) == 1
                   for x in range(0, width, block) for y in range(0, height, block))


# -- playback: every animation at 15 fps, captured at parseInt(fps) ---------------------------


@pytest.mark.parametrize("query, frames, fps, playback_fps", [
    ("", 84, 7, 15),                            # 12 s at parseInt(7.5) = 7 fps, played at 15
    ("?fps=7.9&duration=1500", 11, 7, 15),      # ceil(1.5 s * 7)
    ("?fps=5&duration=2000", 10, 5, 15),
    ("?fps=15&duration=1000", 15, 15, None),    # played at its capture rate: oven's default
    ("?fps=4&duration=1000&playbackFps=8", 4, 4, 8),
])
def test_an_old_animated_grab_is_captured_at_whole_fps_and_played_at_15(
        oven: OvenProcess, query: str, frames: int, fps: int, playback_fps: int | None) -> None:
    sep = "&" if query else "?"
    response = get(oven, f"/grab/webp/97/64/anim{query}{sep}nowait=1", timeout=30)
    assert response.status_code == 202, response.text
    request = job(oven, response.json()["id"])["request"]
    httpx.delete(f"{oven.url}/grabs/{response.json()['id']}", timeout=30,
                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert (request["frames"], request["fps"], request["playback_fps"]) == \
        (frames, fps, playback_fps)


def test_an_old_webp_of_2_s_plays_its_14_frames_at_15_fps(oven: OvenProcess,
                                                           tmp_path: Path) -> None:
    response = get(oven, "/grab/webp/64/48/anim?duration=2000")
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (64, 48)
    durations = webp_ms(response.content, tmp_path)
    assert len(durations) == 14, durations  # ceil(2 s * 7 fps)
    played_at_15(durations)


def test_an_old_gif_of_2_s_at_5_fps_lasts_10_frames_at_15_fps(oven: OvenProcess,
                                                               tmp_path: Path) -> None:
    response = get(oven, "/grab/gif/64/48/anim?duration=2000&fps=5")
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (64, 48)
    assert abs(ffprobe_duration(response.content, tmp_path, "gif") - 10 / 15) <= 0.01


def test_an_old_post_at_density_2_is_twice_the_size_and_plays_at_15(
        oven: OvenProcess, tmp_path: Path) -> None:
    response = httpx.post(f"{oven.url}/grab", timeout=120, json={
        "piece": "anim", "format": "webp", "width": 64, "height": 48, "duration": 1000,
        "fps": 4, "density": 2})
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (128, 96)
    durations = webp_ms(response.content, tmp_path)
    assert len(durations) == 4, durations
    played_at_15(durations)


def test_an_animated_icon_plays_at_15_whatever_fps_it_was_taken_at(
        oven: OvenProcess, tmp_path: Path) -> None:
    response = get(oven, "/icon/64x64/anim.webp?frames=6&fps=30")
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (64, 64)
    durations = webp_ms(response.content, tmp_path)
    assert len(durations) == 6, durations
    played_at_15(durations)


# -- size: a still is width * (viewportScale ?? density), an animation width * density ------


def test_a_still_at_viewport_scale_2_is_twice_the_size_in_art_pixels(oven: OvenProcess) -> None:
    response = get(oven, "/grab/png/64/48/$checks?viewportScale=2")
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (128, 96)
    # The page was laid out at 64x48 CSS px: its 8 px squares are 16 px blocks of one colour.
    assert one_colour_blocks(response.content, 16)


def test_a_still_with_equal_viewport_scale_and_density_is_density_s_size_and_url(
        oven: OvenProcess, code_server: RecordingServer) -> None:
    response = get(oven, "/grab/png/64/48/$checkd?viewportScale=2&density=2")
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (128, 96)
    assert "/k/checkd?density=2&tv" in code_server.paths()


def test_an_animation_s_size_is_density_s_whatever_its_viewport_scale(
        oven: OvenProcess, code_server: RecordingServer, tmp_path: Path) -> None:
    response = get(oven, "/grab/webp/64/48/$checka?viewportScale=3&density=2"
                         "&duration=1000&fps=4")
    assert response.status_code == 200, response.text
    assert size_of(response.content) == (128, 96)
    played_at_15(webp_ms(response.content, tmp_path))
    assert "/k/checka?density=2&tv" in code_server.paths()


# -- what the mapping cannot give: a 422 naming why -------------------------------------------


@pytest.mark.parametrize("path, named", [
    ("/grab/png/1000/1000/anim?viewportScale=2&nowait=1", "width"),  # 2000 px > [limits]
    ("/grab/png/64/64/anim?viewportScale=3&density=2", "viewportScale"),
    ("/grab/png/64/64/anim?viewportScale=0", "viewportScale"),
    ("/grab/png/64/64/anim?viewportScale=17", "viewportScale"),
    ("/grab/webp/64/64/anim?viewportScale=1.5", "viewportScale"),
    ("/grab/webp/64/64/anim?viewportScale=abc", "viewportScale"),
    ("/grab/webp/64/64/anim?fps=0.5", "fps"),  # parseInt: 0 frames a second
    ("/grab/webp/64/64/anim?density=4", "density"),  # [limits] max_density
    ("/grab/webp/64/64/anim?playbackFps=61", "playback_fps"),
    ("/grab/gif/64/64/anim?playbackFps=60", "playback_fps"),  # a GIF plays at most 50
])
def test_old_parameters_the_mapping_cannot_honour_are_a_422_naming_them(
        oven: OvenProcess, path: str, named: str) -> None:
    response = get(oven, path, timeout=30)
    assert response.status_code == 422, response.text
    assert named in response.json()["error"]["message"]


@pytest.mark.parametrize("value", [True, 0, 2.5, "2", None, [2]])
def test_a_posted_viewport_scale_that_is_no_whole_number_from_1_to_16_is_a_422(
        oven: OvenProcess, value: Any) -> None:
    response = httpx.post(f"{oven.url}/grab", timeout=30, json={
        "piece": "anim", "format": "png", "width": 64, "height": 64, "viewportScale": value})
    if value == "2":  # the old clients' numbers come as strings too
        assert response.status_code == 200, response.text
        assert size_of(response.content) == (128, 128)
        return
    assert response.status_code == 422, response.text
    assert "viewportScale" in response.json()["error"]["message"]


def test_nothing_failed_inside_the_service(oven: OvenProcess) -> None:
    assert "unhandled error" not in oven.log
    assert "Traceback" not in oven.log

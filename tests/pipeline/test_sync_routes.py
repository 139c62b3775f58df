"""The waiting routes: GET /grab answers bytes (or 202 with a position), icons and previews."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

from .grab_client import job, submit, wait_for_job


def test_get_grab_waits_and_answers_the_image_bytes(shared_oven: OvenProcess) -> None:
    response = httpx.get(f"{shared_oven.url}/grab/gif/210/118/anim?frames=5&fps=10",
                         timeout=90)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/gif"
    with Image.open(io.BytesIO(response.content)) as gif:
        assert (getattr(gif, "n_frames", 1), gif.size) == (5, (210, 118))


def test_icon_and_preview_answer_pngs_of_the_requested_size(shared_oven: OvenProcess) -> None:
    icon = httpx.get(f"{shared_oven.url}/icon/96/still.png", timeout=90)
    preview = httpx.get(f"{shared_oven.url}/preview/256x144/still.png", timeout=90)
    for response, size in ((icon, (96, 96)), (preview, (256, 144))):
        assert response.status_code == 200, response.text
        with Image.open(io.BytesIO(response.content)) as png:
            assert (png.format, png.size) == ("PNG", size)


def test_nowait_answers_202_with_the_queue_position_while_the_pages_are_busy(
        shared_oven: OvenProcess) -> None:
    # Two long interactive grabs hold both page slots of the shared service.
    # 6 s of real-clock frames each; the request is sent once both run, not on a guess.
    blockers = [submit(shared_oven, piece="anim", format="webp", width=212 + i, height=120,
                       frames=60, fps=10, clock="real") for i in range(2)]
    try:
        wait_until("both blockers to hold a page", lambda: all(
            job(shared_oven, b["id"])["state"] == "running" for b in blockers), timeout=60,
            interval=0.05)
        response = httpx.get(f"{shared_oven.url}/grab/png/214/120/still?nowait=1", timeout=10)
        assert response.status_code == 202, response.text
        body = response.json()
        assert response.headers["X-Queue-Position"] == "1"
        assert body["position"] == 1 and body["state"] == "queued"
        assert response.headers["Location"] == body["status_url"]
    finally:
        for blocker in blockers:
            cancelled = httpx.delete(f"{shared_oven.url}/grabs/{blocker['id']}", timeout=30,
                                     headers={"X-Cancel-Token": blocker["cancel_token"]})
            assert cancelled.status_code == 200, cancelled.text
    assert wait_for_job(shared_oven, body["id"])["state"] == "complete"

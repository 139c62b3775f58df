"""README Showcase: with no OG image at all a request waits up to `og_wait_timeout_s`, then gets
503 with Retry-After, and the render it started goes on, so a retry gets the image; a failed
render answers 503 with the reason and is not started again before `og_retry_s`. Through a
real `oven serve` (tests/showcase/test_og.py covers the waited, fresh and stale answers)."""

from __future__ import annotations

import io
import time

import httpx
from PIL import Image

from tests.oven_process import OvenProcess, StartOven
from tests.pipeline.grab_client import metric
from tests.showcase.conftest import showcase_config
from tests.waiting import wait_until

OG_RETRY_S = 8


def og(oven: OvenProcess) -> httpx.Response:
    return httpx.get(f"{oven.url}/og/mosaic.png", timeout=30)


def assert_503_json(response: httpx.Response, code: str) -> float:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == code, response.text
    retry_after = float(response.headers["Retry-After"])
    assert retry_after >= 1, response.headers
    return retry_after


def renders(oven: OvenProcess, outcome: str) -> float:
    return metric(oven, "oven_og_renders_total", {"layout": "mosaic", "outcome": outcome})


def test_a_request_that_outwaits_the_render_gets_503_with_retry_after_and_the_image_on_retry(
        start_oven: StartOven) -> None:
    # A wait far shorter than any render, so the first request cannot get the image.
    oven = start_oven(showcase_config(og_pieces=["still"], og_wait_timeout_s=0.05))
    assert_503_json(og(oven), "rendering")

    def the_image() -> httpx.Response | None:
        response = og(oven)
        if response.status_code == 503:
            assert_503_json(response, "rendering")  # still rendering, nothing else
            return None
        return response

    image = wait_until("the OG image on retry", the_image, timeout=120, interval=0.5)
    assert image.status_code == 200, image.text
    png = Image.open(io.BytesIO(image.content))
    assert (png.format, png.size) == ("PNG", (1200, 630))
    # "waited" when a retry came just as the render ended, within its own short wait.
    assert image.headers["X-Oven-Og-Freshness"] in ("fresh", "waited"), image.headers
    # The render the first request started went on when that request gave up, and made the
    # image, however many retries came meanwhile.
    assert renders(oven, "ok") == 1
    assert renders(oven, "cancelled") == 0
    assert renders(oven, "failed") == 0


def test_a_failed_render_answers_503_with_the_reason_and_is_retried_only_after_og_retry_s(
        start_oven: StartOven) -> None:
    oven = start_oven(showcase_config(og_pieces=["throws"], og_retry_s=OG_RETRY_S))
    sent_first = time.monotonic()  # the server's failure, and so its og_retry_s, is later
    failed = og(oven)
    # ...and no later than its answer: what is left of og_retry_s is measured from here (the
    # render may take seconds on a loaded machine, so from sent_first it would be too little).
    answered_first = time.monotonic()
    retry_after = assert_503_json(failed, "render_failed")
    assert retry_after <= OG_RETRY_S, failed.headers
    assert "piece exploded on purpose" in failed.json()["error"]["message"], failed.text
    assert renders(oven, "failed") == 1

    # Within og_retry_s: refused at once with what is left of the wait, no render started.
    sent_again = time.monotonic()
    again = og(oven)
    left = assert_503_json(again, "render_failed")
    # What is left of og_retry_s, in whole seconds rounded up at most.
    assert left <= OG_RETRY_S - (sent_again - answered_first) + 1, again.headers
    assert renders(oven, "failed") == 1

    # After it, the next request starts a new render (which fails the same way).
    def rendered_again() -> bool:
        response = og(oven)
        assert_503_json(response, "render_failed")
        return renders(oven, "failed") == 2

    wait_until("a second render", rendered_again, timeout=OG_RETRY_S + 60, interval=0.5)
    assert time.monotonic() - sent_first >= OG_RETRY_S

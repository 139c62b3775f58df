"""Ready rules and quality flags on pages that know nothing of oven's contract (real Chromium)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from oven.capture import Browser, CaptureRequest, NotAsAsked, PieceError, capture, piece_url

from .conftest import PageServer
from .test_capture import read_clock_us

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_page_without_the_contract_is_ready_once_it_has_painted(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    # make_settings gives a 5 s ready timeout: "painted" means it was not waited for.
    result = await capture(browser, CaptureRequest(url=f"{page_server.base}/unsignalled",
                                                   width=700, height=460, frames=4), tmp_path)
    assert result.ready == "painted"
    assert result.flags == []
    assert result.timings["ready"] < 5.0


async def test_the_same_page_on_the_virtual_clock_is_painted_ready_and_reproducible(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    request = CaptureRequest(url=f"{page_server.base}/unsignalled", width=700, height=460,
                             frames=4, clock="virtual")
    first = await capture(browser, request, tmp_path / "a")
    second = await capture(browser, request, tmp_path / "b")
    assert first.ready == second.ready == "painted"
    assert [p.read_bytes() for p in first.frames] == [p.read_bytes() for p in second.frames]


async def test_a_page_that_declares_the_contract_is_waited_for_not_taken_as_painted(
        browser: Browser, tmp_path: Path) -> None:
    result = await capture(browser, CaptureRequest(url=piece_url("never-ready"),
                                                   ready_timeout_s=0.6), tmp_path)
    assert result.ready == "timeout"


async def test_bundled_pieces_are_ready_by_their_contract(browser: Browser,
                                                          tmp_path: Path) -> None:
    for piece in ("anim", "webgl"):
        result = await capture(browser, CaptureRequest(url=piece_url(piece), frames=2),
                               tmp_path / piece)
        assert result.ready == "contract", piece


async def test_wait_for_an_expression_and_for_a_selector(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    url = f"{page_server.base}/late"
    by_expression = await capture(browser, CaptureRequest(
        url=url, wait_for="window.answer === 3"), tmp_path / "e")
    assert by_expression.ready == "expression"
    by_selector = await capture(browser, CaptureRequest(
        url=url, wait_for_selector="#late", width=200, height=200), tmp_path / "s")
    assert by_selector.ready == "selector"
    # The element was there when the frame was taken: its red box is in the picture.
    assert Image.open(by_selector.frames[0]).convert("RGB").getpixel((50, 50)) == (255, 0, 0)


async def test_an_invalid_wait_selector_fails_at_once_as_the_requests_fault(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    with pytest.raises(NotAsAsked, match="not a valid CSS selector"):
        await capture(browser, CaptureRequest(url=f"{page_server.base}/late",
                                              wait_for_selector="div[[", ready_timeout_s=4),
                      tmp_path)


async def test_a_delay_on_the_virtual_clock_moves_page_time_exactly(browser: Browser,
                                                                    tmp_path: Path) -> None:
    plain = CaptureRequest(url=piece_url("clock"), clock="virtual", fps=20)
    delayed = plain.model_copy(update={"delay_ms": 500})
    t0 = read_clock_us((await capture(browser, plain, tmp_path / "a")).frames[0])
    t1 = read_clock_us((await capture(browser, delayed, tmp_path / "b")).frames[0])
    assert t1 - t0 == 500_000


async def test_a_failed_module_import_is_flagged_blank_with_the_failed_load(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    result = await capture(browser, CaptureRequest(url=f"{page_server.base}/module-fails",
                                                   width=320, height=200, frames=3), tmp_path)
    assert result.ready == "painted"
    assert "blank" in result.flags and "frozen" in result.flags
    assert any("missing-module.js" in e and "404" in e for e in result.page_errors), \
        result.page_errors


async def test_a_static_page_asked_for_frames_is_flagged_frozen(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    result = await capture(browser, CaptureRequest(url=f"{page_server.base}/static", width=320,
                                                   height=200, frames=16), tmp_path)
    assert result.flags == ["frozen"] and result.frozen


async def test_a_near_empty_page_is_flagged_dud_and_an_empty_one_blank(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    empty = await capture(browser, CaptureRequest(url=f"{page_server.base}/empty"), tmp_path / "e")
    assert empty.flags == ["blank"]
    # A 9x9 white square on 64x64 of green fills a cell of the 8x8 grid: a picture, not a dud.
    drawn = await capture(browser, CaptureRequest(url=f"{page_server.base}/throws-but-draws",
                                                  width=64, height=64), tmp_path / "d")
    assert drawn.flags == []
    speck = await capture(browser, CaptureRequest(
        url=f"{page_server.base}/empty", width=640, height=360,
        styles=["body::after { content: ''; position: absolute; left: 300px; top: 100px; "
                "width: 2px; height: 2px; background: #000; }"]), tmp_path / "s")
    assert speck.flags == ["dud"]


async def test_reject_turns_a_flag_into_a_failure_of_the_request(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    with pytest.raises(NotAsAsked, match="rejected as blank"):
        await capture(browser, CaptureRequest(url=f"{page_server.base}/empty",
                                              reject=["blank"]), tmp_path / "b")
    with pytest.raises(NotAsAsked, match="rejected as frozen"):
        await capture(browser, CaptureRequest(url=f"{page_server.base}/static", frames=3,
                                              reject=["frozen", "dud"]), tmp_path / "f")
    # A flag not named in reject is only reported.
    kept = await capture(browser, CaptureRequest(url=f"{page_server.base}/empty",
                                                 reject=["frozen"]), tmp_path / "k")
    assert kept.flags == ["blank"]


async def test_errors_of_a_page_without_the_contract_are_reported_not_fatal(
        browser: Browser, page_server: PageServer, tmp_path: Path) -> None:
    result = await capture(browser, CaptureRequest(url=f"{page_server.base}/throws-but-draws",
                                                   width=64, height=64), tmp_path)
    assert result.ready == "painted"
    assert any("analytics exploded" in e for e in result.page_errors), result.page_errors


async def test_a_page_that_declares_the_contract_still_fails_at_its_first_error(
        browser: Browser, tmp_path: Path) -> None:
    with pytest.raises(PieceError, match="piece threw"):
        await capture(browser, CaptureRequest(url=piece_url("throws")), tmp_path)

"""The Browser engine: slots, isolation, request blocking, process ownership and teardown."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from oven.capture import (
    Browser,
    BrowserGone,
    CaptureRequest,
    PieceError,
    capture,
    marked_pids,
    new_marker,
    piece_names,
    piece_url,
    sweep_orphans,
)

from .conftest import PageServer, make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_bundled_pieces_are_listed() -> None:
    assert {"still", "anim", "webgl", "never-ready", "throws", "clock"} <= set(piece_names())


async def test_slots_are_parked_on_about_blank(browser: Browser) -> None:
    async with browser.page_slot() as slot:
        assert slot.page.url == "about:blank"


async def test_pids_are_grouped_by_component(browser: Browser) -> None:
    pids = browser.pids()
    assert pids["browser"] == [browser.browser_pid]
    assert len(pids["driver"]) == 1 and "node" in psutil.Process(pids["driver"][0]).name()
    # The headless shell runs its network and storage services in the browser process: no
    # utility process, unlike the full browser.
    assert pids["renderer"] and pids["gpu"]
    assert os.getpgid(pids["renderer"][0]) == browser.browser_pid  # chromium leads its group


async def test_health_answers_true_for_a_live_browser(browser: Browser) -> None:
    assert await browser.health(timeout_s=2.0) is True


async def test_blocked_url_patterns_are_never_fetched(
    browser: Browser, page_server: PageServer, tmp_path: Path
) -> None:
    result = await capture(browser, CaptureRequest(url=f"{page_server.base}/tracked"), tmp_path)
    assert result.ready == "contract"
    assert "/tracked" in page_server.hits
    assert not [hit for hit in page_server.hits if "tracker.gif" in hit]


async def test_storage_cookies_and_indexeddb_do_not_leak_between_jobs_in_one_slot(
    browser: Browser, page_server: PageServer, tmp_path: Path
) -> None:
    await browser.resize(1)  # one slot, so both jobs run in the same slot
    try:
        for job in range(2):
            result = await capture(browser, CaptureRequest(url=f"{page_server.base}/stateful"),
                                   tmp_path / str(job))
            assert result.ready == "contract"
    finally:
        await browser.resize(2)
    # localStorage | cookie | sessionStorage | IndexedDB: empty for both jobs
    assert [h for h in page_server.hits if h.startswith("/seen")] == ["/seen?found=%7C%7C%7C"] * 2
    assert len(browser.slots) == 2


async def test_a_third_job_waits_for_a_free_slot(browser: Browser) -> None:
    async with browser.page_slot(), browser.page_slot():
        with pytest.raises(TimeoutError):
            async with browser.page_slot(timeout_s=0.2):
                pass
    async with browser.page_slot(timeout_s=2.0) as slot:
        assert slot.ready


async def test_shrinking_waits_for_busy_slots_then_growing_restores_them(
    browser: Browser,
) -> None:
    async with browser.page_slot(), browser.page_slot():
        shrink = asyncio.create_task(browser.resize(1, timeout_s=10.0))
        await asyncio.sleep(0.2)
        assert not shrink.done()
    await asyncio.wait_for(shrink, 10)
    assert len(browser.slots) == 1
    await browser.resize(2)
    assert len(browser.slots) == 2


async def test_request_filter_refuses_pages_it_does_not_allow(
    page_server: PageServer, tmp_path: Path
) -> None:
    marker = new_marker()
    gated = await Browser.launch(make_settings(pages=1), marker=marker,
                                 request_filter=lambda url: "127.0.0.1" not in url)
    try:
        with pytest.raises(PieceError, match="ERR_BLOCKED_BY_CLIENT"):
            await capture(gated, CaptureRequest(url=f"{page_server.base}/tracked"), tmp_path)
        result = await capture(gated, CaptureRequest(url=piece_url("still")), tmp_path)
        assert result.ready == "contract"  # bundled pieces bypass the filter
    finally:
        await gated.close(timeout_s=5.0)
    assert gated.leftover_pids() == [] and marked_pids(marker) == []


async def test_killing_chromium_mid_capture_raises_browser_gone(tmp_path: Path) -> None:
    marker = new_marker()
    doomed = await Browser.launch(make_settings(pages=1), marker=marker)
    try:
        job = asyncio.create_task(capture(
            doomed, CaptureRequest(url=piece_url("anim"), frames=100, fps=20), tmp_path))
        while not list(tmp_path.glob("frame-*")):
            await asyncio.sleep(0.02)
        assert doomed.browser_pid is not None
        os.kill(doomed.browser_pid, signal.SIGKILL)
        with pytest.raises(BrowserGone):
            await asyncio.wait_for(job, 10)
        assert await doomed.health(timeout_s=1.0) is False
        assert doomed.needs_recycle
    finally:
        await doomed.close(timeout_s=5.0)
    assert doomed.leftover_pids() == [] and marked_pids(marker) == []


async def test_close_leaves_no_chromium_process_behind(tmp_path: Path) -> None:
    marker = new_marker()
    short_lived = await Browser.launch(make_settings(pages=2), marker=marker)
    await capture(short_lived, CaptureRequest(url=piece_url("anim"), frames=2), tmp_path)
    tree = [pid for pids in short_lived.pids().values() for pid in pids]
    assert len(tree) >= 5
    await short_lived.close(timeout_s=5.0)
    assert short_lived.leftover_pids() == []
    assert marked_pids(marker) == []
    assert [pid for pid in tree if _alive(pid)] == []


async def test_sweep_orphans_kills_chromium_whose_owner_is_dead(tmp_path: Path) -> None:
    # A marker prefix of the test's own: every oven that starts on this host sweeps the real
    # prefix's orphans, so one starting in another test run at the same time could kill this
    # orphan before the sweep under test looks (and the sweep would rightly not list it).
    prefix = "--oven-sweep-test-owner="
    dead_owner = subprocess.Popen(["true"])
    dead_owner.wait()
    marker = f"{dead_owner.pid}-orphan"
    orphan = subprocess.Popen(
        ["/usr/bin/chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path}", prefix + marker, "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        # Chromium (and Debian's wrapper script) briefly fork children that still carry the
        # browser's command line, so the main pid is looked for, not an exact list.
        deadline = time.monotonic() + 10
        while (orphan.pid not in marked_pids(marker, prefix=prefix)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        assert psutil.Process(orphan.pid).name() == "chromium"
        assert orphan.pid in sweep_orphans(prefix)
        orphan.wait(timeout=5)  # reap it: we are its parent here
        assert marked_pids(marker, prefix=prefix) == []
        assert [p for p in psutil.process_iter() if _in_group(p, orphan.pid)] == []
    finally:
        if orphan.poll() is None:
            os.killpg(orphan.pid, signal.SIGKILL)
            orphan.wait()


async def test_sweep_orphans_spares_a_live_owners_chromium(browser: Browser) -> None:
    assert browser.browser_pid not in sweep_orphans()
    assert await browser.health(timeout_s=2.0)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _in_group(proc: psutil.Process, pgid: int) -> bool:
    try:
        return os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False


async def test_a_virtual_clock_job_leaves_no_shim_for_the_next_job_in_the_same_tab(
    browser: Browser, tmp_path: Path
) -> None:
    await browser.resize(1)  # one slot: both jobs run in the same tab
    try:
        virtual = CaptureRequest(url=piece_url("still"), frames=2, fps=10, clock="virtual")
        await capture(browser, virtual, tmp_path / "virtual")
        async with browser.page_slot() as slot:
            await capture(slot, CaptureRequest(url=piece_url("still")), tmp_path / "real")
            assert await slot.page.evaluate("typeof window.__ovenClock") == "undefined"
    finally:
        await browser.resize(2)

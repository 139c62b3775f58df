"""The dashboard page in real Chromium on a real `oven serve`: a grab moves through its stages,
a frozen piece is unfrozen with the admin token, a hidden tab pauses and resyncs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.dashboard.conftest import ADMIN_TOKEN, PTY_TOKEN
from tests.oven_process import OvenProcess
from tests.pipeline.grab_client import metric, submit, wait_for_job
from tests.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RUNNING_STAGES = {"queued", "navigate", "ready", "capture", "encode", "upload"}


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def problems() -> list[str]:
    """Page errors and console errors; a test removes the ones it caused on purpose."""
    return []


@pytest.fixture
def page(browser: Browser, oven: OvenProcess, problems: list[str]) -> Iterator[Page]:
    opened = browser.new_page(viewport={"width": 1280, "height": 1000})
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    opened.on("console", on_console)
    opened.goto(f"{oven.url}/")
    opened.wait_for_selector("#conn.ok", timeout=20_000)
    yield opened
    opened.close()
    assert not problems, problems
    wait_until("the page's stream to close", lambda: metric(oven, "oven_dashboard_clients") == 0,
               timeout=20)


def set_hidden(page: Page, hidden: bool) -> None:
    """What the browser does when the tab goes to the background (or comes back)."""
    page.evaluate("""hidden => {
        Object.defineProperty(document, "hidden", {value: hidden, configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""", hidden)


def test_the_page_shows_a_grab_moving_through_its_stages_then_complete_in_recent_results(
        oven: OvenProcess, page: Page) -> None:
    queue_row = page.locator('#actors tbody tr[data-actor="grab_queue"]')
    assert queue_row.locator(".name").inner_text() == "grab_queue"
    assert queue_row.locator(".state").inner_text() == "running"
    assert re.fullmatch(r"\d+/1000", queue_row.locator(".mailbox").inner_text())
    # The memory panel's total: "<tree> MiB of <budget> MiB budget (<where it came from>)".
    memory = httpx.get(f"{oven.url}/status", timeout=10).json()["sections"]["memory"]
    figure = page.locator("#memory .total .figure").inner_text()
    shown = re.fullmatch(r"[\d.]+ MiB of ([\d.]+) MiB budget \((.+)\)", figure)
    assert shown is not None, figure
    assert shown[2] == memory["budget_source"], (figure, memory["budget_source"])
    # The page shows memory in 4 MiB steps (MIB_STEP), so the budget is rounded to one.
    assert abs(float(shown[1]) - memory["budget_bytes"] / 2**20) <= 2, (figure, memory)

    # A capture key no other test in this package uses: a cache hit would have no stages.
    accepted = submit(oven, piece="anim", format="webp", width=640, height=360, frames=60,
                      fps=18)
    job_id = accepted["id"]
    assert job_id and not accepted["cached"], accepted
    card = page.locator(f'#active [data-job="{job_id}"]')
    card.wait_for(timeout=30_000)
    shown_stage = card.locator(".stage").inner_text()
    assert shown_stage in RUNNING_STAGES, shown_stage
    assert card.locator(".piece").inner_text() == "anim"  # the placeholder names the piece

    done = page.locator(f'#recent [data-job="{job_id}"][data-state="complete"]')
    done.wait_for(timeout=90_000)
    assert wait_for_job(oven, job_id)["state"] == "complete"
    assert done.get_attribute("href") == f"/grabs/{job_id}/result"
    assert done.locator(".state").inner_text() == "complete"
    assert card.count() == 0  # it left the active grabs
    thumb = done.locator("img")
    wait_until("the thumbnail to load",
               lambda: thumb.evaluate("img => img.complete && img.naturalWidth") == 640,
               timeout=20)
    seen = page.evaluate(f"() => window.dashboard.seen[{job_id!r}]")
    assert set(seen) & RUNNING_STAGES, seen

    # The screenshot: one result in recent results, another grab on its way.
    second = submit(oven, piece="anim", format="webp", width=640, height=360, frames=60, fps=16)
    page.locator(f'#active [data-job="{second["id"]}"]').wait_for(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == PNG_MAGIC
    page.locator(f'#recent [data-job="{second["id"]}"]').wait_for(timeout=90_000)
    state = page.evaluate("() => window.dashboard")
    assert state["snapshots"] == 1 and state["deltas"] > 0
    print(f"stages the page showed for {job_id}: {seen}; {state['deltas']} deltas, "
          f"{state['bytes']} bytes of events; screenshot {shot}")


def test_a_flagged_capture_shows_its_flags_and_ready_rule_in_recent_results(
        oven: OvenProcess, page: Page) -> None:
    # The still piece asked for frames: every frame is the same picture.
    accepted = submit(oven, piece="still", format="webp", width=120, height=80, frames=4)
    done = page.locator(f'#recent [data-job="{accepted["id"]}"][data-state="complete"]')
    done.wait_for(timeout=90_000)
    assert done.locator(".error").inner_text() == "⚠ frozen"
    assert done.locator(".meta").inner_text().endswith("ready: contract")


def test_a_frozen_piece_is_unfrozen_from_the_page_with_the_admin_token(
        oven: OvenProcess, page: Page, problems: list[str]) -> None:
    failed = wait_for_job(oven, submit(oven, piece="throws", format="png", width=320,
                                       height=180)["id"])
    assert failed["state"] == "failed"
    row = page.locator('#frozen tr[data-piece="throws"]')
    row.wait_for(timeout=20_000)

    row.locator("button").click()  # no token yet: the page asks for it
    assert "admin token" in page.locator("#frozen-message").inner_text()
    page.fill("#admin input[name=token]", "wrong-token")
    row.locator("button").click()
    page.wait_for_selector("#frozen-message:has-text('403')", timeout=10_000)
    assert row.count() == 1
    # Chromium logs every 4xx fetch to the console: this one was the point.
    problems[:] = [p for p in problems if "status of 403" not in p]

    page.fill("#admin input[name=token]", ADMIN_TOKEN)
    row.locator("button").click()
    page.wait_for_selector("#frozen-message:has-text('throws unfrozen')", timeout=10_000)
    row.wait_for(state="detached", timeout=20_000)
    assert httpx.get(f"{oven.url}/frozen", timeout=10).json()["frozen"] == []


def test_a_hidden_tab_drops_its_stream_and_resyncs_with_a_snapshot_when_shown(
        oven: OvenProcess, page: Page) -> None:
    wait_until("one dashboard client", lambda: metric(oven, "oven_dashboard_clients") == 1,
               timeout=20)
    set_hidden(page, True)
    assert page.evaluate("() => window.dashboard.phase") == "paused"
    wait_until("the server to let the hidden tab go",
               lambda: metric(oven, "oven_dashboard_clients") == 0, timeout=20)

    # A terminal session starts while the tab is hidden: it shows up after the resync.
    headers = {"Authorization": f"Bearer {PTY_TOKEN}"}
    created = httpx.post(f"{oven.url}/pty/sessions", json={"profile": "cat"}, headers=headers,
                         timeout=30)
    assert created.status_code == 201, created.text
    session = created.json()["id"]
    try:
        set_hidden(page, False)
        page.wait_for_selector("#conn.ok", timeout=20_000)
        page.locator(f'#pty tr[data-key="{session}"]').wait_for(timeout=20_000)
        assert page.evaluate("() => window.dashboard.snapshots") == 2
    finally:
        httpx.delete(f"{oven.url}/pty/sessions/{session}", headers=headers, timeout=30)
    page.locator(f'#pty tr[data-key="{session}"]').wait_for(state="detached", timeout=20_000)

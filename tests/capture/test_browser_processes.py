"""What a warm Chromium runs besides the page slots' tabs: nothing that costs a process."""

from __future__ import annotations

import contextlib

import pytest
from playwright.async_api import Route

from oven.capture import Browser, marked_pids, new_marker

from .conftest import make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_warm_browser_runs_one_renderer_per_page_slot_and_no_browser_ui_page() -> None:
    # Its own browser: the shared one's slot count is changed by other tests.
    marker = new_marker()
    warm = await Browser.launch(make_settings(pages=2), marker=marker)
    try:
        targets = await warm.targets.list()
        # Each window pre-loaded WebUI omnibox popups (chrome://omnibox-popup.top-chrome/...),
        # each in a renderer of its own: ~35 MB of PSS a page slot for nothing headless uses.
        assert [t["url"] for t in targets if t["type"] != "page"] == []
        assert [t["url"] for t in targets if t["type"] == "page"] == ["about:blank"] * 2
        assert len(warm.pids()["renderer"]) == 2
    finally:
        await warm.close(timeout_s=5.0)
    assert marked_pids(marker) == []


def _node_options(pid: int) -> str:
    with open(f"/proc/{pid}/environ", "rb") as f:
        for entry in f.read().split(b"\0"):
            if entry.startswith(b"NODE_OPTIONS="):
                return entry.split(b"=", 1)[1].decode()
    return ""


async def test_playwrights_driver_runs_with_the_configured_node_options() -> None:
    for options in ("--max-semi-space-size=1 --jitless", "--max-semi-space-size=2"):
        marker = new_marker()
        launched = await Browser.launch(make_settings(pages=1, driver_node_options=options),
                                        marker=marker)
        try:
            driver = launched.pids()["driver"]
            assert len(driver) == 1
            assert _node_options(driver[0]).startswith(options)
            assert await launched.health(timeout_s=5.0) is True
        finally:
            await launched.close(timeout_s=5.0)
        assert marked_pids(marker) == []


async def test_the_network_service_runs_inside_the_browser_process(browser: Browser) -> None:
    # A utility process of its own cost ~37 MB of PSS.
    sub_types = set()
    for pid in browser.pids()["utility"]:
        with contextlib.suppress(FileNotFoundError), open(f"/proc/{pid}/cmdline", "rb") as f:
            # Zygote-forked processes rewrite their argv as one space-separated string.
            args = f.read().decode(errors="replace").replace("\0", " ").split()
            sub_types |= {a.split("=", 1)[1] for a in args if a.startswith("--utility-sub-type=")}
    assert "network.mojom.NetworkService" not in sub_types
    assert await browser.health(timeout_s=5.0) is True


async def test_an_http_page_is_asked_for_over_http_not_upgraded_to_https(
        browser: Browser) -> None:
    # Playwright turns HTTPS upgrades off, but Chromium keeps only the last --disable-features
    # switch, and oven's own came last: the http:// page was first asked for as https://, and
    # where that form is refused (a blocked request, a host with no TLS) the navigation failed.
    asked: list[str] = []
    async with browser.page_slot() as slot:
        async def answer(route: Route) -> None:
            asked.append(route.request.url)
            if route.request.url.startswith("https:"):
                await route.abort("blockedbyclient")
            else:
                await route.fulfill(status=200, content_type="text/html", body="<p>plain</p>")

        await slot.page.route("**/*", answer)
        try:
            response = await slot.page.goto("http://plain-http.example.com/", timeout=15_000)
            assert response is not None and response.status == 200
            assert await slot.page.inner_text("p") == "plain"
        finally:
            await slot.page.unroute("**/*", answer)
    assert asked == ["http://plain-http.example.com/"]

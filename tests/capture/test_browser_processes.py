"""What a warm Chromium runs besides the page slots' tabs: nothing that costs a process."""

from __future__ import annotations

import pytest

from oven.capture import Browser, marked_pids, new_marker

from .conftest import make_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_a_warm_browser_runs_one_renderer_per_page_slot_and_no_browser_ui_page() -> None:
    # Its own browser: the shared one's slot count is changed by other tests.
    marker = new_marker()
    warm = await Browser.launch(make_settings(pages=2), marker=marker)
    try:
        targets = await warm.targets()
        # Each window pre-loaded WebUI omnibox popups (chrome://omnibox-popup.top-chrome/...),
        # each in a renderer of its own: ~35 MB of PSS a page slot for nothing headless uses.
        assert [t["url"] for t in targets if t["type"] != "page"] == []
        assert [t["url"] for t in targets if t["type"] == "page"] == ["about:blank"] * 2
        assert len(warm.pids()["renderer"]) == 2
    finally:
        await warm.close(timeout_s=5.0)
    assert marked_pids(marker) == []

"""Each Chromium start runs on a throwaway profile of its own, removed when it stops, also when
it is killed (Playwright removes it only on a graceful close)."""

from __future__ import annotations

from oven.capture import Browser, BrowserSettings, new_marker

SETTINGS = BrowserSettings(pages=1)


async def test_each_browser_start_has_its_own_profile_and_closing_removes_it() -> None:
    first = await Browser.launch(SETTINGS, marker=new_marker())
    try:
        second = await Browser.launch(SETTINGS, marker=new_marker())
        try:
            assert first.profile_dir is not None and second.profile_dir is not None
            assert first.profile_dir != second.profile_dir
            assert first.profile_dir.is_dir() and second.profile_dir.is_dir()
        finally:
            await second.close(timeout_s=10)
        assert not second.profile_dir.exists()
    finally:
        await first.close(timeout_s=10)
    assert not first.profile_dir.exists()


async def test_a_killed_browser_leaves_no_profile_behind() -> None:
    browser = await Browser.launch(SETTINGS, marker=new_marker())
    profile = browser.profile_dir
    assert profile is not None and profile.is_dir()
    try:
        browser.kill()  # the hard stop a hung actor gets: SIGKILL, no graceful close
        assert not profile.exists()
        assert browser.leftover_pids() == []
    finally:
        await browser.close(timeout_s=10)  # stops the driver's connection objects too

"""The dashboard lists the instances on the shared store (from their heartbeat records)."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page

from tests.oven_process import OvenProcess
from tests.waiting import wait_until

from .test_page import browser, page, problems

__all__ = ["browser", "page", "problems"]


def test_the_page_lists_the_instances_seen_in_the_store_with_role_pages_and_heartbeat(
        oven: OvenProcess, page: Page) -> None:
    row = page.locator("#instances tbody tr").first
    row.wait_for(timeout=20_000)
    assert row.locator(".role").inner_text() == "all"
    assert int(row.locator(".pages").inner_text()) >= 1
    # The package's oven is shared: another test's grab may still be running. The column must
    # agree with the instance's own record once both have caught up.
    wait_until("the running column to show the record's count",
               lambda: row.locator(".running").inner_text() == str(_running(oven)), timeout=30)
    assert row.locator(".beat").inner_text().endswith("ago")
    assert page.locator("#instances tbody tr").count() == 1


def _running(oven: OvenProcess) -> int:
    sections = httpx.get(f"{oven.url}/status", timeout=10).json()["sections"]
    mine = [i for i in sections["instances"] if i["this"]]
    assert len(mine) == 1, sections["instances"]
    return int(mine[0]["running"])

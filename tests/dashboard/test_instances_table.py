"""The dashboard lists the instances on the shared store (from their heartbeat records)."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.oven_process import OvenProcess

from .test_page import browser, page, problems

__all__ = ["browser", "page", "problems"]


def test_the_page_lists_the_instances_seen_in_the_store_with_role_pages_and_heartbeat(
        oven: OvenProcess, page: Page) -> None:
    row = page.locator("#instances tbody tr").first
    row.wait_for(timeout=20_000)
    assert row.locator(".role").inner_text() == "all"
    assert int(row.locator(".pages").inner_text()) >= 1
    assert row.locator(".running").inner_text() == "0"
    assert row.locator(".beat").inner_text().endswith("ago")
    assert page.locator("#instances tbody tr").count() == 1

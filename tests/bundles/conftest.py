"""Fixtures of the bundle tests: the piece origin (tests/bundles/site.py) and real Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from oven.capture import BrowserSettings
from tests.bundles.site import PieceSite, piece_site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PieceSite]:
    with piece_site(tmp_path_factory.mktemp("piece-site")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    settings = BrowserSettings()
    if not Path(settings.executable_path).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=settings.executable_path,
                                              args=settings.args)
        yield launched
        launched.close()

"""A real `oven serve` with small screenshot presets, so the showcase tests stay quick."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.oven_process import OvenProcess, running_oven

# Small sizes, one of them at density 2: the PNG is twice the CSS viewport.
SMALL_PRESETS = {
    "small-portrait": {"width": 90, "height": 160, "density": 1},
    "small-landscape": {"width": 320, "height": 180, "density": 2},
}


def showcase_config(**showcase: object) -> dict[str, dict[str, object]]:
    config: dict[str, dict[str, object]] = {"showcase": dict(showcase)}
    for name, preset in SMALL_PRESETS.items():
        config[f"showcase.presets.{name}"] = dict(preset)
    return config


def start_showcase_oven(workdir: Path, **showcase: object) -> OvenProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    return OvenProcess(workdir, config=showcase_config(**showcase)).start()


@pytest.fixture(scope="module")
def showcase_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    with running_oven(tmp_path_factory.mktemp("showcase-oven"), showcase_config()) as oven:
        yield oven

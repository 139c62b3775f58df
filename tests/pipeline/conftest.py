"""One real `oven serve` shared by the pipeline tests that do not need their own config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oven_process import OvenProcess, free_port, running_oven

ADMIN_TOKEN = "pipeline-admin-token"
MAX_BODY_BYTES = 65536

__all__ = ["ADMIN_TOKEN", "MAX_BODY_BYTES", "shared_oven"]


@pytest.fixture(scope="session")
def shared_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    port = free_port()
    config = {
        "server": {"admin_token": ADMIN_TOKEN, "max_body_bytes": MAX_BODY_BYTES},
        # Lossless WebP, so the pixels a piece painted survive for the clock test.
        "encoder": {"webp_lossless": True},
        # The service's own loopback origin is allowed, so the private-address rule (not
        # just the allow-list) is what refuses it.
        "pieces": {"allowed_origins": [f"http://localhost:{port}"]},
    }
    with running_oven(tmp_path_factory.mktemp("shared-oven"), config, port=port) as oven:
        yield oven

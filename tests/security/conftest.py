"""Fixtures of the security suite: real `oven serve` processes started with their own config."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oven.capture._settings import DEFAULT_ARGS
from tests.oven_process import OvenProcess, free_port, running_oven

ADMIN_TOKEN = "sec-admin-token-4f1c9a"
METRICS_TOKEN = "sec-metrics-token-77b2e0"
PTY_TOKEN = "sec-pty-token-d91e3b"
MAX_BODY_BYTES = 65536


def chromium_args(*extra: str, disable: tuple[str, ...] = ()) -> list[str]:
    """oven's default Chromium switches plus `extra`; `disable` joins the --disable-features list
    (Chromium keeps only the last --disable-features switch, so it must be one)."""
    args = []
    for arg in DEFAULT_ARGS:
        if arg.startswith("--disable-features=") and disable:
            arg = ",".join([arg, *disable])
        args.append(arg)
    return [*args, *extra]


@pytest.fixture(scope="module")
def edge_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    """One service for the refusal cases: tokens set, a small body limit, and its own loopback
    origin allowed (so the private-address rule, not the allow-list, is what refuses it)."""
    port = free_port()
    config: dict[str, dict[str, object]] = {
        "server": {"admin_token": ADMIN_TOKEN, "metrics_token": METRICS_TOKEN,
                   "max_body_bytes": MAX_BODY_BYTES},
        "log": {"level": "DEBUG"},
        "pieces": {"allowed_origins": [f"http://localhost:{port}",
                                       f"http://127.0.0.1:{port}"]},
        "pty": {"enabled": True, "token": PTY_TOKEN},
        "browser": {"pages": 1},
        # The refusal list and the fuzzer submit hundreds of requests a second from one
        # client; the rate limit has its own tests (test_edge_features.py).
        "edge": {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000},
    }
    with running_oven(tmp_path_factory.mktemp("security-oven"), config, port=port) as oven:
        yield oven


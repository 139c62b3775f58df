"""A real S3 HTTP API (moto server on loopback) shared by the session, reset per test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oven.storage import S3Settings, S3Storage

from .moto_s3 import MotoServer, s3_settings_for, start_moto


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_moto(moto: MotoServer) -> MotoServer:
    moto.reset()
    return moto


@pytest.fixture
def s3_settings(fresh_moto: MotoServer) -> S3Settings:
    return s3_settings_for(fresh_moto.endpoint)


@pytest.fixture
async def s3_storage(s3_settings: S3Settings) -> AsyncIterator[S3Storage]:
    storage = S3Storage(s3_settings)
    await storage.start()
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    path = tmp_path / "sample.png"
    path.write_bytes(os.urandom(100 * 1024))
    return path

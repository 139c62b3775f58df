"""The old grab routes with results in a bucket (a real S3 API server, moto): a cache hit is a
302 to the stored object's own URL, or its bytes proxied when the request carries Origin (the
CDN sends no CORS headers); a fresh capture is the bytes."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.oven_process import OvenProcess, running_oven
from tests.pipeline.test_backends import s3_config
from tests.storage.moto_s3 import BUCKET, MotoServer, start_moto

ORIGIN = {"Origin": "https://kidlisp.example"}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def oven(tmp_path_factory: pytest.TempPathFactory, moto: MotoServer) -> Iterator[OvenProcess]:
    template = f"{moto.endpoint}/{BUCKET}/{{key}}"
    config = {**s3_config(moto, public_url_template=template, acl="public-read"),
              "browser": {"pages": 1}}
    with running_oven(tmp_path_factory.mktemp("compat-s3"), config) as oven:
        yield oven


def test_post_grab_answers_bytes_then_a_302_and_with_origin_the_proxied_bytes(
        oven: OvenProcess, moto: MotoServer) -> None:
    body = {"piece": "still", "format": "png", "width": 110, "height": 64}
    first = httpx.post(f"{oven.url}/grab", json=body, timeout=90)
    assert first.status_code == 200, first.text
    assert (first.headers["content-type"], first.headers["x-cache"]) == ("image/png", "MISS")
    with Image.open(io.BytesIO(first.content)) as png:
        assert png.size == (110, 64)

    hit = httpx.post(f"{oven.url}/grab", json=body, timeout=30)
    assert hit.status_code == 302, hit.text
    assert hit.headers["x-cache"] == "HIT"
    location = hit.headers["location"]
    assert location.startswith(f"{moto.endpoint}/{BUCKET}/")
    assert httpx.get(location, timeout=10).content == first.content

    proxied = httpx.post(f"{oven.url}/grab", json=body, timeout=30, headers=ORIGIN)
    assert proxied.status_code == 200, proxied.text
    assert proxied.headers["x-proxy"] == "CDN" and proxied.headers["x-cache"] == "HIT"
    assert proxied.headers["content-type"] == "image/png"
    assert proxied.content == first.content


def test_get_grab_redirects_a_hit_but_a_placeholder_request_gets_the_bytes(
        oven: OvenProcess, moto: MotoServer) -> None:
    path = f"{oven.url}/grab/png/111/64/still"
    first = httpx.get(path, timeout=90)
    assert first.status_code == 200, first.text
    hit = httpx.get(path, timeout=30)
    assert hit.status_code == 302 and hit.headers["location"].startswith(moto.endpoint)
    with_origin = httpx.get(path, timeout=30, headers=ORIGIN)
    assert with_origin.status_code == 200 and with_origin.content == first.content
    # An <img> asking nowait=true follows no promise: it gets the image itself.
    img = httpx.get(f"{path}?nowait=true", timeout=30)
    assert img.status_code == 200 and img.content == first.content
    assert "x-oven-status" not in img.headers

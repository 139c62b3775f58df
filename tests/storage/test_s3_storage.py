"""S3Storage against a real S3 HTTP API (moto server on loopback)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError

from oven.storage import S3Settings, S3Storage, StorageError, StorageUnavailable
from oven.storage._s3 import translate_s3_error

from .moto_s3 import BUCKET, MotoServer, free_port, s3_settings_for, start_moto


def raw_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}),
    )


async def test_put_then_presigned_get_returns_the_same_bytes(
    s3_storage: S3Storage, sample_file: Path
) -> None:
    stored = await s3_storage.put("grabs/abc.png", sample_file, "image/png")

    assert stored.key == "grabs/abc.png"
    assert stored.size == sample_file.stat().st_size
    assert stored.url is not None and "X-Amz-Signature" in stored.url
    assert await s3_storage.exists("grabs/abc.png")
    response = httpx.get(stored.url, timeout=5)
    assert response.status_code == 200
    assert response.content == sample_file.read_bytes()
    assert s3_storage.local_path("grabs/abc.png") is None


async def test_deleted_object_no_longer_exists(s3_storage: S3Storage, sample_file: Path) -> None:
    await s3_storage.put("gone.png", sample_file, "image/png")

    await s3_storage.delete("gone.png")
    await s3_storage.delete("gone.png")  # deleting twice is not an error

    assert not await s3_storage.exists("gone.png")
    assert not await s3_storage.exists("never-stored.png")


async def test_public_url_template_is_used_instead_of_presigning(
    fresh_moto: MotoServer, sample_file: Path
) -> None:
    settings = s3_settings_for(
        fresh_moto.endpoint,
        prefix="results/",
        public_url_template="https://cdn.example.com/{key}",
    )
    storage = S3Storage(settings)
    await storage.start()
    try:
        stored = await storage.put("a b/c.png", sample_file, "image/png")
    finally:
        await storage.close()

    assert stored.url == "https://cdn.example.com/results/a%20b/c.png"
    head = raw_client(fresh_moto.endpoint).head_object(Bucket=BUCKET, Key="results/a b/c.png")
    assert head["ContentLength"] == stored.size


async def test_object_carries_content_type_cache_control_and_acl(
    fresh_moto: MotoServer, sample_file: Path
) -> None:
    storage = S3Storage(s3_settings_for(fresh_moto.endpoint, acl="public-read"))
    await storage.start()
    try:
        await storage.put("x.webp", sample_file, "image/webp")
    finally:
        await storage.close()

    client = raw_client(fresh_moto.endpoint)
    head = client.head_object(Bucket=BUCKET, Key="x.webp")
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == "public, max-age=31536000, immutable"
    grants = client.get_object_acl(Bucket=BUCKET, Key="x.webp")["Grants"]
    assert any(
        g["Grantee"].get("URI", "").endswith("/global/AllUsers") and g["Permission"] == "READ"
        for g in grants
    )


async def test_files_above_the_threshold_go_up_in_parts_and_small_ones_in_one_put(
    fresh_moto: MotoServer, tmp_path: Path
) -> None:
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    small = tmp_path / "small.mp4"
    small.write_bytes(os.urandom(1024))
    settings = s3_settings_for(fresh_moto.endpoint, multipart_threshold_bytes=5 * 1024 * 1024)
    storage = S3Storage(settings)
    await storage.start()
    try:
        stored = await storage.put("big.mp4", big, "video/mp4")
        await storage.put("small.mp4", small, "video/mp4")
    finally:
        await storage.close()

    client = raw_client(fresh_moto.endpoint)
    big_head = client.head_object(Bucket=BUCKET, Key="big.mp4")
    assert big_head["ETag"].strip('"').endswith("-2")  # 5 MiB + 1 MiB parts
    assert big_head["ContentType"] == "video/mp4"
    assert big_head["CacheControl"] == "public, max-age=31536000, immutable"
    assert "-" not in client.head_object(Bucket=BUCKET, Key="small.mp4")["ETag"]
    assert stored.url is not None
    assert httpx.get(stored.url, timeout=10).content == big.read_bytes()


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "a\x00b", "", "a//b"])
async def test_unsafe_keys_are_refused_before_any_request(
    s3_storage: S3Storage, sample_file: Path, key: str
) -> None:
    with pytest.raises(ValueError):
        await s3_storage.put(key, sample_file, "image/png")
    with pytest.raises(ValueError):
        await s3_storage.exists(key)


async def test_refused_connection_raises_storage_unavailable_within_seconds(
    sample_file: Path,
) -> None:
    storage = S3Storage(s3_settings_for(f"http://127.0.0.1:{free_port()}", create_bucket=False))
    await storage.start()
    try:
        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as put_error:
            await storage.put("x.png", sample_file, "image/png")
        with pytest.raises(StorageUnavailable) as check_error:
            await storage.check()
        elapsed = time.monotonic() - started
    finally:
        await storage.close()

    assert put_error.value.transient and check_error.value.transient
    assert "unreachable" in str(check_error.value)
    assert elapsed < 5


async def test_endpoint_that_never_answers_times_out_as_storage_unavailable(
    sample_file: Path,
) -> None:
    with socket.socket() as silent:
        # Listening but never accepting: the kernel completes the handshake, nobody replies.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        storage = S3Storage(s3_settings_for(endpoint, create_bucket=False, read_timeout_s=0.5))
        await storage.start()
        try:
            started = time.monotonic()
            with pytest.raises(StorageUnavailable) as error:
                await storage.put("x.png", sample_file, "image/png")
            elapsed = time.monotonic() - started
        finally:
            await storage.close()

    assert error.value.transient
    assert elapsed < 5


async def test_endpoint_that_goes_away_raises_storage_unavailable_within_seconds(
    tmp_path: Path, sample_file: Path
) -> None:
    server = start_moto(tmp_path / "moto.log")
    storage = S3Storage(s3_settings_for(server.endpoint))
    try:
        await storage.start()
        await storage.put("before.png", sample_file, "image/png")
        server.stop()

        started = time.monotonic()
        with pytest.raises(StorageUnavailable) as error:
            await storage.put("after.png", sample_file, "image/png")
        assert time.monotonic() - started < 5
        assert error.value.transient
    finally:
        await storage.close()
        server.stop()


async def test_missing_bucket_is_a_permanent_error_that_names_the_bucket(
    fresh_moto: MotoServer, sample_file: Path
) -> None:
    storage = S3Storage(
        s3_settings_for(fresh_moto.endpoint, bucket="no-such-bucket", create_bucket=False)
    )
    await storage.start()
    try:
        with pytest.raises(StorageError) as put_error:
            await storage.put("x.png", sample_file, "image/png")
        with pytest.raises(StorageUnavailable) as check_error:
            await storage.check()
    finally:
        await storage.close()

    assert not put_error.value.transient
    assert not isinstance(put_error.value, StorageUnavailable)
    assert "no-such-bucket" in str(put_error.value) and "does not exist" in str(put_error.value)
    assert not check_error.value.transient
    assert "does not exist" in str(check_error.value)


async def test_check_passes_on_a_reachable_bucket(s3_storage: S3Storage) -> None:
    await s3_storage.check()


async def test_missing_source_file_is_a_permanent_error(
    s3_storage: S3Storage, tmp_path: Path
) -> None:
    with pytest.raises(StorageError) as error:
        await s3_storage.put("x.png", tmp_path / "nope.png", "image/png")
    assert not error.value.transient


async def test_calls_outside_the_started_state_are_loud_errors(
    s3_settings: S3Settings, sample_file: Path
) -> None:
    storage = S3Storage(s3_settings)
    with pytest.raises(RuntimeError, match="before start"):
        await storage.put("x.png", sample_file, "image/png")
    await storage.start()
    await storage.close()
    with pytest.raises(RuntimeError, match="once it is closed"):
        await storage.exists("x.png")


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {"x-amz-request-id": "1"}},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("SlowDown", 503), True),
        (client_error("InternalError", 500), True),
        (client_error("TooManyRequests", 429), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (client_error("AccessDenied", 403), False),
        (client_error("InvalidAccessKeyId", 403), False),
        (client_error("NoSuchBucket", 404), False),
    ],
)
def test_errors_are_sorted_into_transient_and_permanent(error: Exception, transient: bool) -> None:
    translated = translate_s3_error(error, action="upload 'x'", bucket="b", where="here")
    assert translated.transient is transient
    assert isinstance(translated, StorageUnavailable) is transient


def test_an_answer_without_s3_headers_points_at_the_endpoint_setting() -> None:
    bare: Any = {"Error": {"Code": "404"}, "ResponseMetadata": {"HTTPStatusCode": 404}}
    translated = translate_s3_error(
        ClientError(bare, "HeadBucket"),
        action="reach the bucket",
        bucket="b",
        where="here",
        bucket_op=True,
    )
    assert not translated.transient
    assert "is storage.s3.endpoint_url an S3 server?" in str(translated)

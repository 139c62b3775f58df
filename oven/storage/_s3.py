"""Results in an S3 or S3-compatible bucket through one long-lived aioboto3 client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aioboto3
import botocore.handlers
from aiobotocore.config import AioConfig
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from oven.storage._base import (
    Lifecycle,
    StorageError,
    StorageUnavailable,
    StoredObject,
    validate_key,
)
from oven.storage._settings import S3Settings

logger = logging.getLogger(__name__)

# Floor on upload speed used only to size the whole-call deadline: a peer that stops reading our
# body is not covered by any socket timeout, so without this a stalled upload waits forever.
_MIN_UPLOAD_BYTES_PER_S = 256 * 1024

_THROTTLING_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "RequestTimeout",
    "InternalError",
    "ServiceUnavailable",
}
_DENIED_CODES = {
    "AccessDenied",
    "403",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}


class S3Storage:
    """Objects under `prefix` in one bucket. Open with `start()`, release with `close()`."""

    def __init__(self, settings: S3Settings) -> None:
        if not settings.bucket:
            raise ValueError("S3Storage needs settings.bucket")
        self._settings = settings
        self._bucket: str = settings.bucket
        self._where = settings.endpoint_url or f"AWS S3 ({settings.region})"
        self._lifecycle = Lifecycle("S3Storage")
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        # Parts the size of the threshold: a file just over it goes up in two parts, not one.
        self._transfer = TransferConfig(
            multipart_threshold=settings.multipart_threshold_bytes,
            multipart_chunksize=settings.multipart_threshold_bytes,
        )

    async def start(self) -> None:
        self._lifecycle.started()
        s = self._settings
        session = aioboto3.Session(
            aws_access_key_id=s.access_key_id.get_secret_value() if s.access_key_id else None,
            aws_secret_access_key=(
                s.secret_access_key.get_secret_value() if s.secret_access_key else None
            ),
            region_name=s.region,
        )
        config = AioConfig(
            connect_timeout=s.connect_timeout_s,
            read_timeout=s.read_timeout_s,
            # Few attempts here: the Uploader owns retries with backoff, and a refused connection
            # must reach it in seconds rather than after botocore's own long retry ladder.
            retries={"total_max_attempts": s.max_attempts, "mode": "standard"},
            s3={"addressing_style": "path" if s.path_style else "auto"},
            # Without this botocore presigns with SigV2, which newer AWS regions refuse.
            signature_version="s3v4",
            # botocore >= 1.36 adds CRC checksums to every upload by default; several
            # S3-compatible servers reject those, so send them only where S3 requires them.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # One client for the life of the backend: it holds the connection pool and credentials.
        self._client = await self._stack.enter_async_context(
            session.client("s3", endpoint_url=s.endpoint_url, config=config)
        )
        # botocore sends "Expect: 100-continue" on every PutObject/UploadPart, and aiohttp waits
        # for the interim 100 with no timeout at all: a silent peer would hang the upload.
        self._client.meta.events.unregister("before-call.s3", botocore.handlers.add_expect_header)
        if s.create_bucket:
            try:
                await self._ensure_bucket()
            except BaseException:
                await self.close()  # a failed start leaves no open client behind
                raise
        logger.info(
            "s3 storage started",
            extra={"bucket": self._bucket, "endpoint": self._where, "prefix": s.prefix},
        )

    async def put(self, key: str, path: Path, content_type: str) -> StoredObject:
        object_key = self._object_key(key)
        self._lifecycle.require_started("put")
        extra: dict[str, str] = {"ContentType": content_type}
        if self._settings.cache_control:
            extra["CacheControl"] = self._settings.cache_control
        if self._settings.acl:
            extra["ACL"] = self._settings.acl
        started = time.monotonic()
        try:
            size = (await asyncio.to_thread(Path(path).stat)).st_size
            # upload_file sends one put_object below the threshold and a multipart upload above.
            async with asyncio.timeout(self._deadline_s(size)):
                await self._client.upload_file(
                    str(path), self._bucket, object_key, ExtraArgs=extra, Config=self._transfer
                )
        except FileNotFoundError as exc:
            raise StorageError(f"source file {path} does not exist") from exc
        except OSError as exc:
            if exc.filename == str(path):  # our file, not the endpoint: no retry mends it
                raise StorageError(f"source file {path} cannot be read: {exc}") from exc
            raise self._translate(exc, f"upload {object_key!r}") from exc
        except Exception as exc:
            raise self._translate(exc, f"upload {object_key!r}") from exc
        logger.debug(
            "stored %s (%d bytes) in %.3f s",
            object_key,
            size,
            time.monotonic() - started,
            extra={"key": key},
        )
        return StoredObject(key=key, size=size, url=await self.url_for(key))

    async def url_for(self, key: str) -> str | None:
        object_key = self._object_key(key)
        template = self._settings.public_url_template
        if template is not None:
            return template.format(key=quote(object_key, safe="/~"), bucket=self._bucket)
        self._lifecycle.require_started("url_for")
        try:
            url: str = await self._client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self._bucket, "Key": object_key},
                ExpiresIn=self._settings.presign_ttl_s,
            )
        except Exception as exc:
            raise self._translate(exc, f"presign {object_key!r}") from exc
        return url

    def local_path(self, key: str) -> Path | None:
        validate_key(key)
        return None

    async def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        self._lifecycle.require_started("exists")
        try:
            async with asyncio.timeout(self._deadline_s()):
                await self._client.head_object(Bucket=self._bucket, Key=object_key)
        except ClientError as exc:
            # HEAD has no body, so a missing key and a missing bucket both read as 404;
            # check() is where a missing bucket is told apart.
            if _status(exc) == 404:
                return False
            raise self._translate(exc, f"look up {object_key!r}") from exc
        except Exception as exc:
            raise self._translate(exc, f"look up {object_key!r}") from exc
        return True

    async def delete(self, key: str) -> None:
        object_key = self._object_key(key)
        self._lifecycle.require_started("delete")
        try:
            async with asyncio.timeout(self._deadline_s()):
                await self._client.delete_object(Bucket=self._bucket, Key=object_key)
        except Exception as exc:
            raise self._translate(exc, f"delete {object_key!r}") from exc

    async def check(self) -> None:
        self._lifecycle.require_started("check")
        try:
            async with asyncio.timeout(self._deadline_s()):
                await self._client.head_bucket(Bucket=self._bucket)
        except Exception as exc:
            err = self._translate(exc, "reach the bucket", bucket_op=True)
            raise StorageUnavailable(str(err), transient=err.transient) from exc

    async def close(self) -> None:
        self._lifecycle.closed()
        self._client = None
        await self._stack.aclose()

    def _object_key(self, key: str) -> str:
        return self._settings.prefix + validate_key(key)

    async def _ensure_bucket(self) -> None:
        try:
            async with asyncio.timeout(self._deadline_s()):
                await self._client.head_bucket(Bucket=self._bucket)
            return
        except ClientError as exc:
            if _status(exc) != 404:
                raise self._translate(exc, "look up the bucket", bucket_op=True) from exc
        except Exception as exc:
            raise self._translate(exc, "look up the bucket", bucket_op=True) from exc
        kwargs: dict[str, Any] = {"Bucket": self._bucket}
        if self._settings.region != "us-east-1":
            # us-east-1 is the one region that rejects an explicit LocationConstraint.
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._settings.region}
        try:
            async with asyncio.timeout(self._deadline_s()):
                await self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise self._translate(exc, "create the bucket", bucket_op=True) from exc
        except Exception as exc:
            raise self._translate(exc, "create the bucket", bucket_op=True) from exc
        logger.info("created bucket %s", self._bucket, extra={"endpoint": self._where})

    def _deadline_s(self, payload_bytes: int = 0) -> float:
        """A bound on a whole call, retries included, so nothing waits forever."""
        s = self._settings
        # botocore's standard retry mode sleeps up to 2**n s (capped at 20) before attempt n+1.
        backoff = sum(min(2**n, 20) for n in range(s.max_attempts - 1))
        per_attempt = s.connect_timeout_s + s.read_timeout_s
        return s.max_attempts * per_attempt + backoff + payload_bytes / _MIN_UPLOAD_BYTES_PER_S

    def _translate(
        self, exc: BaseException, action: str, *, bucket_op: bool = False
    ) -> StorageError:
        return translate_s3_error(
            exc, action=action, bucket=self._bucket, where=self._where, bucket_op=bucket_op
        )


def translate_s3_error(
    exc: BaseException, *, action: str, bucket: str, where: str, bucket_op: bool = False
) -> StorageError:
    """Turn a botocore/aiohttp failure into a StorageError that says what to do about it."""
    head = f"S3 could not {action} (bucket {bucket!r} at {where})"
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        code, status = _code(exc), _status(exc)
        detail = exc.response.get("Error", {}).get("Message") or code
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        if not any(name.lower().startswith("x-amz") for name in headers):
            # Every S3 implementation tags its answers; a bare 404/403 is some other web server.
            head += " (the answer had no x-amz-* header: is storage.s3.endpoint_url an S3 server?)"
        if code == "NoSuchBucket" or (bucket_op and status == 404):
            return StorageError(
                f"{head}: the bucket does not exist; create it or fix storage.s3.bucket "
                "(storage.s3.create_bucket = true creates it at start, for dev)",
                transient=False,
            )
        if code in _DENIED_CODES or status == 403:
            return StorageError(
                f"{head}: access denied ({code}); check storage.s3.access_key_id/"
                "secret_access_key (or the AWS credential chain) and the bucket policy",
                transient=False,
            )
        if code in _THROTTLING_CODES or status == 429 or (status is not None and status >= 500):
            return StorageUnavailable(f"{head}: server busy or failing ({code}: {detail})")
        return StorageError(f"{head}: {code}: {detail}", transient=False)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return StorageError(
            f"{head}: no usable credentials; set storage.s3.access_key_id and "
            "secret_access_key or configure the AWS credential chain",
            transient=False,
        )
    if isinstance(exc, TimeoutError):
        return StorageUnavailable(
            f"{head}: no answer within the call's deadline (connect/read timeouts x attempts); "
            "check storage.s3.endpoint_url and the network"
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError | OSError):
        return StorageUnavailable(
            f"{head}: endpoint unreachable ({exc}); check storage.s3.endpoint_url and the network"
        )
    if isinstance(exc, BotoCoreError):
        return StorageError(f"{head}: {exc}", transient=False)
    # aiohttp errors that escape botocore's wrapping are connection trouble as well.
    if type(exc).__module__.startswith("aiohttp"):
        return StorageUnavailable(f"{head}: endpoint unreachable ({exc!r})")
    return StorageError(f"{head}: unexpected {type(exc).__name__}: {exc}", transient=False)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None

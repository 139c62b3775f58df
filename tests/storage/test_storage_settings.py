"""StorageSettings: typed, range-checked, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from oven.storage import S3Storage, StorageSettings, make_storage


def test_defaults_are_a_results_dir_under_the_data_dir() -> None:
    settings = StorageSettings()
    assert settings.backend == "local"
    assert settings.local_dir == Path("results")
    assert settings.s3.multipart_threshold_bytes == 8 * 1024 * 1024


def test_s3_backend_without_a_bucket_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"requires storage\.s3\.bucket"):
        StorageSettings(backend="s3")


def test_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError, match="bukket"):
        StorageSettings.model_validate({"backend": "s3", "s3": {"bukket": "b"}})


@pytest.mark.parametrize(
    ("s3", "reason"),
    [
        ({"bucket": "b1b", "multipart_threshold_bytes": 1024 * 1024},
         r"s3\.multipart_threshold_bytes\s+Input should be greater than or equal to 5242880"),
        ({"bucket": "b1b", "public_url_template": "https://cdn.example.com/"},
         r"s3\.public_url_template\s+Value error, public_url_template must contain \{key\}"),
        ({"bucket": "b1b", "public_url_template": "https://cdn/{key}/{nope}"},
         r"s3\.public_url_template\s+Value error, .* only use \{key\} and \{bucket\}: \{'nope'\}"),
        ({"bucket": "b1b", "access_key_id": "only-half"},
         r"s3\s+Value error, set both access_key_id and secret_access_key, or neither"),
        ({"bucket": "b1b", "acl": "world-writable"},
         r"s3\.acl\s+Input should be 'private', "),
        ({"bucket": "b1b", "endpoint_url": "127.0.0.1:9000"},
         r"s3\.endpoint_url\s+Value error, endpoint_url must start with http:// or https://"),
        ({"bucket": "b1b", "prefix": "/abs/"},
         r"s3\.prefix\s+Value error, prefix must be relative"),
        ({"bucket": "b1b", "max_attempts": 0},
         r"s3\.max_attempts\s+Input should be greater than or equal to 1"),
    ],
)
def test_out_of_range_s3_values_are_refused(s3: dict[str, object], reason: str) -> None:
    # Each case names the field and the rule, so one refused for another reason cannot pass.
    with pytest.raises(ValidationError, match=reason) as refused:
        StorageSettings.model_validate({"backend": "s3", "s3": s3})
    assert refused.value.error_count() == 1, refused.value


def test_secrets_are_masked_when_shown() -> None:
    settings = StorageSettings.model_validate(
        {
            "backend": "s3",
            "s3": {"bucket": "b1b", "access_key_id": "AKIDSECRET", "secret_access_key": "hush"},
        }
    )
    shown = repr(settings) + settings.model_dump_json()
    assert "AKIDSECRET" not in shown and "hush" not in shown
    assert isinstance(make_storage(settings, Path("/data")), S3Storage)

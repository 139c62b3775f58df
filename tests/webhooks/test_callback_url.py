"""Which callback URLs are accepted at the edge, and the signature receivers check."""

from __future__ import annotations

import hashlib
import hmac
import socket

import pytest

from oven.grabs import TargetRefused, is_private
from oven.webhooks import (
    CallbackRefused,
    WebhookSettings,
    backoff_s,
    check_callback_url,
    check_resolved,
    sign,
    verify,
)

ALLOWED = WebhookSettings(secret="s3cret-s3cret-s3cret", allowed_origins=["https://hooks.example.com",
                                                                         "http://10.1.2.3:8080"])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("javascript:alert(1)", "scheme 'javascript' is not allowed"),
        ("ftp://hooks.example.com/x", "scheme 'ftp' is not allowed"),
        ("https:///no-host", "has no host"),
        ("https://evil.example.net/hook", "origin https://evil.example.net is not allowed"),
        ("http://hooks.example.com/hook", "origin http://hooks.example.com is not allowed"),
        ("https://hooks.example.com:8443/hook", "origin https://hooks.example.com:8443"),
        ("http://10.1.2.3:8080/hook", "10.1.2.3 is a private address"),
        ("http://localhost.:8080/hook", "origin http://localhost.:8080 is not allowed"),
        ("https://hooks.example.com:99999/", "not a valid URL"),
    ],
)
def test_callback_urls_outside_the_rules_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(CallbackRefused, match=why) as refused:
        check_callback_url(url, ALLOWED)
    assert str(refused.value).startswith("callback_url: ")
    assert isinstance(refused.value, TargetRefused) and refused.value.status == 422


def test_an_allowed_origin_is_accepted_with_default_ports_normalised() -> None:
    assert check_callback_url("https://hooks.example.com/a?b=1", ALLOWED) == \
        "https://hooks.example.com/a?b=1"
    assert check_callback_url("https://HOOKS.example.com:443/a", ALLOWED)


def test_private_addresses_are_allowed_only_with_allow_private() -> None:
    settings = ALLOWED.model_copy(update={"allow_private": True})
    assert check_callback_url("http://10.1.2.3:8080/hook", settings)
    local = WebhookSettings(secret="s" * 20, allowed_origins=["http://localhost:8080",
                                                               "http://[::1]:8080"])
    for url in ("http://localhost:8080/x", "http://[::1]:8080/x"):
        with pytest.raises(CallbackRefused, match="is a private address"):
            check_callback_url(url, local)


def test_callbacks_are_refused_when_no_secret_or_no_origin_is_configured() -> None:
    with pytest.raises(CallbackRefused, match=r"\[webhooks\] secret is unset"):
        check_callback_url("https://hooks.example.com/x",
                           WebhookSettings(allowed_origins=["https://hooks.example.com"]))
    with pytest.raises(CallbackRefused, match="callbacks are disabled"):
        check_callback_url("https://hooks.example.com/x", WebhookSettings(secret="s" * 20))


async def test_a_name_resolving_to_a_private_address_is_refused_before_sending() -> None:
    # This machine's own name resolves to a loopback or private address (it does on any host
    # with the usual /etc/hosts entry); the literal check cannot see that, only resolution can.
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)}
    if not all(is_private(str(a)) for a in addresses):
        pytest.skip(f"{host} resolves to a public address here")
    settings = WebhookSettings(secret="s" * 20, allowed_origins=[f"http://{host}:8080"])
    assert check_callback_url(f"http://{host}:8080/hook", settings)
    with pytest.raises(CallbackRefused, match="resolves to a private address"):
        await check_resolved(f"http://{host}:8080/hook", settings)


def test_the_signature_is_an_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"id":"job-1","state":"complete"}'
    expected = hmac.new(b"key", body, hashlib.sha256).hexdigest()
    assert sign("key", body) == f"sha256={expected}"
    assert verify("key", body, f"sha256={expected}")
    assert not verify("key", body + b" ", f"sha256={expected}")


def test_backoff_doubles_up_to_the_cap_plus_at_most_a_fifth_of_jitter() -> None:
    settings = WebhookSettings(initial_backoff_s=1, max_backoff_s=30)
    for failures, base in [(1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (12, 30)]:
        wait = backoff_s(failures, settings)
        assert base <= wait <= base * 1.2

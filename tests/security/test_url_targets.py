"""Raw URLs are read the way Chromium reads them (WHATWG), checked against the allow-list as read,
and handed to Chromium re-serialised: no form of a URL can name one host to the check and
another to the browser.

Against a real `oven serve`: its egress proxy hands every request on to a recording server
(`upstream_proxy`), so every request Chromium makes arrives there with the host and path it was
meant for, and the names in the allow-list need no DNS (`allow_private = true` skips the edge's
lookup; the address rules have their own tests below and in test_page_guard.py).

Decisions (see oven.grabs.url_target): userinfo is refused outright (a capture never needs
credentials in its URL, and `evil@allowed` is the classic confusion); a URL whose host an
RFC 3986 reader (Python's urlsplit, httpx) would read differently from the browser is refused
as ambiguous, since not every caller of the check fetches the re-serialised URL; a trailing dot
makes a different origin, as it does in the browser.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oven.grabs import PiecesSettings, TargetRefused, origin_of, url_target
from tests.oven_process import OvenProcess
from tests.pipeline.grab_client import post_grab, wait_for_job

from .servers import RecordingServer, Reply

PUBLIC = "93.184.216.34"
ALLOWED = ["http://allowed.example", f"http://{PUBLIC}", "https://Secure.Example:8443"]
READY_PAGE = b"<!doctype html><script>window.ovenReady = true;</script>"

# (submitted, why it must be refused)
REFUSED = [
    ("http://evil.example\\@allowed.example/", "backslash ends the authority: host evil.example"),
    ("http://evil.example\\\\@allowed.example/", "two backslashes"),
    ("http://evil.exa\tmple\\@allowed.example/", "a tab inside the evil host"),
    ("http://allowed.example\\@evil.example/", "the browser reads allowed.example, others evil"),
    ("http://evil.example@allowed.example/", "userinfo"),
    ("http://allowed.example@evil.example/", "userinfo naming the allowed host"),
    ("http://allowed.example:80@evil.example/", "userinfo that looks like a port"),
    ("http://:@allowed.example/", "empty userinfo"),
    ("http://evil.example%5C@allowed.example/", "percent-encoded backslash in userinfo"),
    ("http:\\\\allowed.example\\page", "backslashes instead of //"),
    ("http:allowed.example/page", "no // at all"),
    ("http://%61llowed.example/", "percent-encoded host"),
    ("http://allowed%2Eexample/", "percent-encoded dot"),
    ("http://allowed.example./", "trailing dot: another origin in the browser"),
    ("http://allowed.example:8080/", "another port"),
    ("https://allowed.example/", "another scheme"),
    ("http://0x5d.0xb8.0xd8.0x22/", "hex IPv4 form of the allowed address"),
    ("http://1572395042/", "integer IPv4 form of the allowed address"),
    ("http://93.184.0xd8.34/", "mixed IPv4 form"),
    (f"http://{PUBLIC}./", "IPv4 with a trailing dot"),
    ("http://[::ffff:93.184.216.34]/", "IPv4-mapped IPv6 of the allowed address"),
    ("http://[::93.184.216.34]/", "IPv4-compatible IPv6 of the allowed address"),
    ("http://[64:ff9b::5db8:d822]/", "NAT64 form of the allowed address"),
    ("http://0x7f.1/", "loopback in short hex"),
    ("http://2130706433/", "loopback as an integer"),
    ("ftp://allowed.example/", "scheme"),
    ("javascript:alert(1)//allowed.example", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("http://allowed.example:99999/", "port out of range"),
    ("http://allo wed.example/", "a space in the host"),
    ("http://allowed.example\x00/", "a NUL"),
]

# (submitted, what Chromium must request: host, path+query)
ACCEPTED = [
    ("HTTP://Allowed.EXAMPLE:80/Page", ("allowed.example", "/Page")),
    ("http://allowed.example/a\\b\\c", ("allowed.example", "/a/b/c")),
    ("http://allo\twed.exa\nmple/pa\r\nge?q=1", ("allowed.example", "/page?q=1")),
    ("  http://allowed.example/trimmed  ", ("allowed.example", "/trimmed")),
    ("http://allowed.example/a/./b/../c/%2e%2e/d", ("allowed.example", "/a/d")),
    ("http://allowed.example/q?x=a b&y=<>", ("allowed.example", "/q?x=a%20b&y=%3C%3E")),
    (f"http://{PUBLIC}:80/plain#fragment", (PUBLIC, "/plain")),
]


def _settings(**overrides: object) -> PiecesSettings:
    return PiecesSettings.model_validate({"allowed_origins": ALLOWED, "allow_private": True,
                                          **overrides})


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[why for _, why in REFUSED])
async def test_every_parser_differential_form_is_refused(url: str, why: str) -> None:
    with pytest.raises(TargetRefused):
        await url_target(url, _settings())


@pytest.mark.parametrize(("url", "expected"), ACCEPTED, ids=[u for u, _ in ACCEPTED])
async def test_accepted_forms_come_back_as_the_browser_serialises_them(
        url: str, expected: tuple[str, str]) -> None:
    host, path = expected
    target = await url_target(url, _settings())
    assert target == f"http://{host}{path}" + ("#fragment" if "#" in url else "")


async def test_userinfo_is_refused_naming_the_rule() -> None:
    with pytest.raises(TargetRefused, match="user name or password"):
        await url_target("http://evil.example@allowed.example/", _settings())


@pytest.mark.parametrize(("entry", "origin"), [
    ("http://allowed.example", "http://allowed.example"),
    ("HTTP://ALLOWED.example:80/any/path", "http://allowed.example"),
    ("https://Secure.Example:8443", "https://secure.example:8443"),
    ("https://secure.example:443/", "https://secure.example"),
    ("http://ex\u00e4mple.com", "http://xn--exmple-cua.com"),
    ("http://[::FFFF:127.0.0.1]:8080", "http://[::ffff:7f00:1]:8080"),
    ("http://0x7f.1", "http://127.0.0.1"),
    ("http://allowed.example.", "http://allowed.example."),
])
def test_origins_are_normalised_by_the_same_parser(entry: str, origin: str) -> None:
    assert origin_of(entry) == origin


async def test_private_rule_checks_the_host_the_browser_would_reach() -> None:
    settings = PiecesSettings(allowed_origins=["http://127.0.0.1", "http://[::ffff:7f00:1]"])
    for url in ("http://127.0.0.1/", "http://[::ffff:127.0.0.1]/"):
        with pytest.raises(TargetRefused, match="private address"):
            await url_target(url, settings)


# --- through a running service ------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxy() -> Iterator[RecordingServer]:
    with RecordingServer(lambda host, path: Reply(body=READY_PAGE)).running() as server:
        yield server


@pytest.fixture(scope="module")
def allow_list_oven(tmp_path_factory: pytest.TempPathFactory,
                    proxy: RecordingServer) -> Iterator[OvenProcess]:
    oven = OvenProcess(Path(tmp_path_factory.mktemp("url-targets-oven")), config={
        "browser": {"pages": 1, "upstream_proxy": f"127.0.0.1:{proxy.port}"},
        "pieces": {"allowed_origins": ALLOWED, "allow_private": True},
        "edge": {"rate_limit_per_s": 10_000, "rate_limit_burst": 100_000},
    })
    oven.start()
    try:
        yield oven
    finally:
        code = oven.stop()
    assert code == 0, f"oven serve exited {code} on SIGTERM:\n{oven.log[-3000:]}"


def test_a_running_service_refuses_every_parser_differential_form_with_403(
        allow_list_oven: OvenProcess, proxy: RecordingServer) -> None:
    admitted = []
    for url, why in REFUSED:
        response = post_grab(allow_list_oven, url=url, format="png", width=64, height=64)
        if response.status_code != 403:
            admitted.append((why, url, response.status_code, response.text[:200]))
            if response.status_code == 202:  # let it run, to see where the browser went
                wait_for_job(allow_list_oven, response.json()["id"], timeout=90)
            continue
        assert response.json()["error"]["code"] == "target_refused", response.text
    assert admitted == []
    assert "evil.example" not in proxy.hosts()


def test_a_running_service_navigates_to_the_normalised_url(
        allow_list_oven: OvenProcess, proxy: RecordingServer) -> None:
    for url, (host, path) in ACCEPTED:
        response = post_grab(allow_list_oven, url=url, format="png", width=64, height=64)
        assert response.status_code in (200, 202), (url, response.text)
        view = wait_for_job(allow_list_oven, response.json()["id"], timeout=90)
        assert view["state"] == "complete", (url, view)
        assert (host, path) in proxy.hits, (url, proxy.hits[-5:])
        # The job's target is the normalised URL: its plain spelling is the same capture.
        plain = f"http://{host}{path}" + ("#fragment" if "#" in url else "")
        again = post_grab(allow_list_oven, url=plain, format="png", width=64, height=64)
        assert again.status_code == 200 and again.json()["cached"], (url, plain, again.text)
    requested = {h for h, _ in proxy.hits} - {"clients2.google.com"}
    assert requested <= {"allowed.example", PUBLIC}, requested


def test_the_edge_answers_a_refused_url_with_a_json_error_naming_the_field(
        allow_list_oven: OvenProcess) -> None:
    response = httpx.post(f"{allow_list_oven.url}/grabs", timeout=30, json={
        "url": "http://evil.example\\@allowed.example/", "format": "png"})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "target_refused"
    assert error["message"].startswith("url: ")
    assert "evil.example" in error["message"]

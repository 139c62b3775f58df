"""A named list of nasty requests, each answered with the right 4xx and a JSON error, through a
real `oven serve`. Extends tests/pipeline/test_edge_rules.py (which covers the plain cases:
allow-list refusals, width/height/frames over the limit, not-JSON, not-declared-JSON, body over
the limit) with negative and zero values, odd JSON, non-UTF-8, traversal in every path form,
and URLs that point inward in disguise."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.oven_process import OvenProcess
from tests.pipeline.grab_client import descendants

from .conftest import ADMIN_TOKEN, MAX_BODY_BYTES


@dataclass
class Nasty:
    name: str
    status: int
    method: str = "POST"
    path: str = "/grabs"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    mentions: str | None = None  # the error message must name this (a field, a reason)

    @classmethod
    def grab(cls, name: str, status: int, mentions: str | None = None, **fields: Any) -> Nasty:
        body = {"piece": "still", "format": "png"} | fields
        return cls(name, status, body=json.dumps(body).encode(),
                   headers={"content-type": "application/json"}, mentions=mentions)

    @classmethod
    def raw(cls, name: str, status: int, body: bytes, mentions: str | None = None,
            content_type: str = "application/json") -> Nasty:
        return cls(name, status, body=body, headers={"content-type": content_type},
                   mentions=mentions)

    @classmethod
    def get(cls, name: str, path: str, status: int, mentions: str | None = None) -> Nasty:
        return cls(name, status, method="GET", path=path, mentions=mentions)


URL = Nasty.grab  # readability: the url cases replace the piece
P = "{port}"  # the service's own port, filled in at run time

NASTY = [
    # numbers: zero, negative, fractional, huge, not finite
    Nasty.grab("zero width", 422, "width", width=0),
    Nasty.grab("negative height", 422, "height", height=-360),
    Nasty.grab("fractional width", 422, "width", width=640.5),
    Nasty.grab("astronomical width", 422, "width", width=10**30),
    Nasty.grab("zero frames", 422, "frames", format="webp", frames=0),
    Nasty.grab("negative frames", 422, "frames", format="webp", frames=-16),
    Nasty.grab("zero fps", 422, "fps", format="webp", frames=4, fps=0),
    Nasty.grab("negative fps", 422, "fps", format="webp", frames=4, fps=-20),
    Nasty.grab("fps over the limit", 422, "fps", format="webp", frames=4, fps=240),
    Nasty.grab("density under 1", 422, "density", density=0.5),
    Nasty.grab("negative duration", 422, "duration", format="webp", duration=-1),
    Nasty.grab("duration over the limit", 422, "duration", format="webp", frames=300, fps=1),
    Nasty.grab("frames on a still format", 422, "format", frames=8),
    Nasty.raw("NaN density", 422, b'{"piece": "still", "format": "png", "density": NaN}',
              "density"),
    Nasty.raw("infinite fps", 422,
              b'{"piece": "still", "format": "webp", "frames": 4, "fps": Infinity}', "fps"),
    Nasty.raw("duration overflowing frames", 422,
              b'{"piece": "anim", "format": "webp", "duration": 1e308, "fps": 60}', "duration"),
    # formats and enums
    Nasty.grab("unknown format", 422, "format", format="bmp"),
    Nasty.grab("format in upper case", 422, "format", format="PNG"),
    Nasty.grab("empty format", 422, "format", format=""),
    Nasty.grab("unknown clock", 422, "clock", clock="warp"),
    Nasty.grab("unknown lane", 422, "lane", lane="vip"),
    Nasty.grab("unknown field", 422, "callback_evil", callback_evil="x"),
    Nasty.grab("wrong type for width", 422, "width", width={"$gt": 0}),
    # piece names
    Nasty.grab("piece with dot-dot slash", 422, "piece", piece="../../etc/passwd"),
    Nasty.grab("piece percent-encoded dot-dot", 422, "piece", piece="%2e%2e%2fetc"),
    Nasty.grab("piece with NUL", 422, "piece", piece="still\x00.png"),
    Nasty.grab("piece as absolute path", 422, "piece", piece="/etc/passwd"),
    Nasty.grab("piece of 65 characters", 422, "piece", piece="a" * 65),
    Nasty.grab("empty piece", 422, "piece", piece=""),
    Nasty.grab("piece that does not exist", 404, "no-such-piece", piece="no-such-piece"),
    Nasty.raw("both piece and url", 422,
              b'{"piece": "still", "url": "http://localhost:1/", "format": "png"}', "piece"),
    Nasty.raw("neither piece nor url", 422, b'{"format": "png"}', "piece"),
    # URLs pointing inward in disguise
    URL("data: URL", 403, "scheme", piece=None, url="data:text/html,<h1>hi</h1>"),
    URL("ftp URL", 403, "scheme", piece=None, url="ftp://localhost/x"),
    URL("URL without host", 403, "host", piece=None, url="http:///etc/passwd"),
    URL("not a URL at all", 403, None, piece=None, url="just words"),
    URL("port out of range", 403, "url", piece=None, url="http://localhost:99999/"),
    URL("port that is not a number", 403, "url", piece=None, url="http://localhost:8o/"),
    URL("unspecified address", 403, None, piece=None, url=f"http://0.0.0.0:{P}/"),
    URL("IPv4-mapped IPv6 loopback", 403, None, piece=None,
        url=f"http://[::ffff:127.0.0.1]:{P}/"),
    URL("decimal loopback", 403, None, piece=None, url=f"http://2130706433:{P}/"),
    URL("loopback in an allowed origin", 403, "private", piece=None,
        url=f"http://127.0.0.1:{P}/pieces/still/"),
    URL("allowed name resolving to loopback, with user info", 403, "private", piece=None,
        url=f"http://user:pw@localhost:{P}/pieces/still/"),
    # bodies
    Nasty.raw("JSON array body", 422, b'[{"piece": "still"}]', "object"),
    Nasty.raw("JSON null body", 422, b"null", "object"),
    Nasty.raw("truncated JSON", 400, b'{"piece": "still", ', "JSON"),
    Nasty.raw("empty body", 400, b"", "JSON"),
    Nasty.raw("non-UTF-8 body", 400, b'{"piece": "st\xffill", "format": "png"}', "JSON"),
    Nasty.raw("JSON nested 50000 deep", 400, b"[" * 50_000, "JSON"),
    Nasty.raw("form-encoded body", 415, b"piece=still", "JSON",
              content_type="application/x-www-form-urlencoded"),
    Nasty.raw("JSON-like content type", 415, b'{"piece": "still"}', "JSON",
              content_type="application/json-patch+json"),
    Nasty("no content type", 415, body=b'{"piece": "still"}', mentions="JSON"),
    Nasty.raw("body one byte over the limit", 413, b" " * (MAX_BODY_BYTES + 1), "bytes"),
    # the GET path forms
    Nasty.get("sync grab of zero width", "/grab/png/0/360/still", 422, "width"),
    Nasty.get("sync grab of an unknown format", "/grab/bmp/640/360/still", 422, "format"),
    Nasty.get("sync grab of a huge size", "/grab/png/99999999999/360/still", 422, "width"),
    Nasty.get("sync grab of encoded dot-dot", "/grab/png/640/360/%2e%2e", 422, "piece"),
    Nasty.get("sync grab of NUL", "/grab/png/640/360/still%00", 422, "piece"),
    Nasty.get("sync grab of encoded slashes", "/grab/png/640/360/..%2f..%2fetc%2fpasswd", 404),
    Nasty.get("sync grab with frames not a number", "/grab/webp/64/64/anim?frames=abc", 422,
              "frames"),
    Nasty.get("sync grab with negative frames", "/grab/webp/64/64/anim?frames=-3", 422,
              "frames"),
    Nasty.get("sync grab with fps NaN", "/grab/webp/64/64/anim?frames=4&fps=nan", 422, "fps"),
    Nasty.get("sync grab with an unknown clock", "/grab/png/64/64/still?clock=warp", 422,
              "clock"),
    Nasty.get("icon of size zero", "/icon/0/still.png", 422, "width"),
    Nasty.get("icon of a huge size", "/icon/99999/still.png", 422, "width"),
    Nasty.get("icon of encoded dot-dot", "/icon/64/%2e%2e.png", 422, "piece"),
    Nasty.get("icon with NUL", "/icon/64/still%00.png", 422, "piece"),
    Nasty.get("icon of an unknown extension", "/icon/64/still.svg", 404, "still.svg"),
    Nasty.get("preview of zero size", "/preview/0x0/still.png", 422, "width"),
    Nasty.get("preview of a negative size", "/preview/640x-1/still.png", 404, "WIDTHxHEIGHT"),
    Nasty.get("preview of encoded dot-dot", "/preview/64x64/%2e%2e.png", 422, "piece"),
    Nasty.get("preview of an absolute path", "/preview/64x64/%2fetc%2fpasswd.png", 404),
    Nasty.get("result key escaping the store", "/results/..%2f..%2fserve.log", 404),
    Nasty.get("pieces file escaping its directory", "/pieces/..%2f..%2f_cli.py", 404),
    Nasty.get("grab id with NUL", "/grabs/abc%00def", 404),
    # tokens and methods
    Nasty("admin reload without a token", 401, path="/admin/reload"),
    Nasty("admin reload with a wrong token", 403, path="/admin/reload",
          headers={"authorization": "Bearer not-the-token"}),
    Nasty("admin reload with a non-ASCII token", 403, path="/admin/reload",
          headers={"authorization": "Bearer t\u00f6ken"}),
    Nasty("unfreeze with a token of the wrong scheme", 401, method="DELETE",
          path="/frozen/still", headers={"authorization": f"Basic {ADMIN_TOKEN}"}),
    Nasty.get("metrics without the metrics token", "/metrics", 401, "metrics"),
    Nasty("a method the route does not have", 405, method="PUT", path="/grabs"),
]


def _send(oven: OvenProcess, case: Nasty) -> tuple[int, dict[str, str], bytes]:
    """Send exactly these bytes and this path (httpx would normalise '..' and encodings)."""
    body = case.body
    if body is not None and b"{port}" in body:
        body = body.replace(b"{port}", str(oven.port).encode())
    conn = http.client.HTTPConnection("127.0.0.1", oven.port, timeout=30)
    try:
        headers = {k: v.encode("utf-8").decode("latin-1") for k, v in case.headers.items()}
        conn.request(case.method, case.path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("case", NASTY, ids=lambda c: c.name if isinstance(c, Nasty) else None)
def test_each_nasty_request_answers_its_4xx_with_a_json_error(edge_oven: OvenProcess,
                                                              case: Nasty) -> None:
    status, headers, raw = _send(edge_oven, case)
    assert status == case.status, (status, raw[:300])
    assert headers["content-type"].startswith("application/json"), headers
    error = json.loads(raw)["error"]
    assert error["code"] and error["message"], error
    if case.mentions is not None:
        assert case.mentions.lower() in error["message"].lower(), error


def test_after_the_nasty_list_no_actor_restarted_and_no_capture_is_left_running(
        edge_oven: OvenProcess) -> None:
    for case in NASTY:  # order-independent: run the whole list once more here
        _send(edge_oven, case.values[0] if not isinstance(case, Nasty) else case)
    status = httpx.get(f"{edge_oven.url}/status", timeout=10).json()
    assert status["healthy"], status
    assert [a for a in status["actors"] if a["restarts"]] == [], status["actors"]
    assert not [p for p in descendants(edge_oven) if "ffmpeg" in " ".join(p.cmdline())]

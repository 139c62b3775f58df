"""Piece names: KidLisp codes ($code) and the URL templates that turn names into pages."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pydantic import ValidationError

from oven.grabs import (
    CodeTemplateUnset,
    GrabRequest,
    PiecesSettings,
    TargetRefused,
    UnknownPiece,
    piece_target,
)
from tests.oven_process import OvenProcess, running_oven
from tests.security.servers import RecordingServer, Reply
from tests.waiting import wait_until

# A page that paints and says it is ready: what a code's URL serves in these tests.
PAGE = b"""<!doctype html><body style="margin:0;background:#123"><canvas id="c" width="64"
height="64"></canvas><script>const g = document.getElementById("c").getContext("2d");
g.fillStyle = "#e40"; g.fillRect(0, 0, 64, 64); window.ovenReady = true;</script>"""

HOSTILE_NAMES = [
    "$", "$$x", "$../x", "$..", "$%2e%2e", "$r\u00f6z", "$" + "a" * 33, "${piece}", "{piece}",
    "$a b", "$a/b", "$a?x", "$a#b", "$a@b", "$a\x00", "$a.b", "$a:b", "$a\\b", "$\u0661",
    "$roz\n", "anim\n", "a" * 65, "-x", "$-x", "$_x", "ROZ", "$a%b",
]


@pytest.mark.parametrize("name", ["$roz", "$39i", "$A1b2", "$" + "z" * 32, "anim", "my-piece"])
def test_kidlisp_codes_and_piece_names_are_accepted(name: str) -> None:
    assert GrabRequest(piece=name).piece == name


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_refused_naming_the_piece(name: str) -> None:
    with pytest.raises(ValidationError, match="piece: names are"):
        GrabRequest(piece=name)


@pytest.mark.parametrize("template, complaint", [
    ("http://h.example/{piece.__class__}", "plainly"),
    ("http://h.example/{piece[0]}", "plainly"),
    ("http://h.example/{piece!r}", "plainly"),
    ("http://h.example/{piece:>99}", "plainly"),
    ("http://h.example/{code}", "plainly"),
    ("http://h.example/{density}", "must contain {piece}"),
    ("http://h.example/{piece", "not a valid template"),
    ("file:///etc/{piece}", "http(s)"),
    ("javascript:{piece}", "http(s)"),
    ("{piece}", "does not make a URL"),
])
def test_a_url_template_may_name_only_its_own_fields_plainly(template: str,
                                                              complaint: str) -> None:
    with pytest.raises(ValidationError, match=r"url_template") as info:
        PiecesSettings(url_template=template)
    assert complaint in str(info.value)


def test_a_code_template_names_code_not_piece() -> None:
    with pytest.raises(ValidationError, match=r"code_template[\s\S]*plainly"):
        PiecesSettings(code_template="https://ac.example/{piece}")
    with pytest.raises(ValidationError, match=r"must contain \{code\}"):
        PiecesSettings(code_template="https://ac.example/x?d={density}")


def test_a_code_page_url_comes_from_the_code_template_with_density_and_flags() -> None:
    settings = PiecesSettings(
        code_template="https://ac.example/${code}?density={density}&tv&nolabel&nogap&spoofaudio")
    assert piece_target("$roz", settings, density=2) == \
        "https://ac.example/$roz?density=2&tv&nolabel&nogap&spoofaudio"
    assert piece_target("$roz", settings) == \
        "https://ac.example/$roz?density=1&tv&nolabel&nogap&spoofaudio"
    named = PiecesSettings(url_template="https://ac.example/{piece}?density={density}&tv")
    assert piece_target("wand", named, density=1.5) == "https://ac.example/wand?density=1.5&tv"


def test_a_code_asked_of_a_service_without_a_code_template_names_the_setting() -> None:
    with pytest.raises(CodeTemplateUnset, match=r"\[pieces\] code_template"):
        piece_target("$roz", PiecesSettings())


def test_a_bundled_code_template_knows_only_the_bundled_pieces() -> None:
    settings = PiecesSettings(code_template="http://pieces.oven.internal/{code}/")
    assert piece_target("$anim", settings) == "http://pieces.oven.internal/anim/"
    with pytest.raises(UnknownPiece, match="no piece named '\\$roz'"):
        piece_target("$roz", settings)


def test_a_template_with_credentials_is_refused_when_a_url_is_made() -> None:
    settings = PiecesSettings(code_template="https://user:pw@ac.example/{code}")
    with pytest.raises(TargetRefused, match="user name or password"):
        piece_target("$roz", settings)


# -- through a real `oven serve` -----------------------------------------------------------


@pytest.fixture(scope="module")
def code_server() -> Iterator[RecordingServer]:
    with RecordingServer(lambda host, path: Reply(body=PAGE)).running() as server:
        yield server


@pytest.fixture(scope="module")
def default_oven(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OvenProcess]:
    with running_oven(tmp_path_factory.mktemp("names-default"), {"browser": {"pages": 1}}) as oven:
        yield oven


@pytest.fixture(scope="module")
def code_oven(tmp_path_factory: pytest.TempPathFactory,
              code_server: RecordingServer) -> Iterator[OvenProcess]:
    template = (f"http://127.0.0.1:{code_server.port}/k/{{code}}?density={{density}}"
                "&tv&nolabel")
    config = {"browser": {"pages": 1}, "pieces": {"code_template": template}}
    with running_oven(tmp_path_factory.mktemp("names-code"), config) as oven:
        yield oven


def test_a_code_without_a_code_template_is_a_422_naming_the_setting(
        default_oven: OvenProcess) -> None:
    response = httpx.get(f"{default_oven.url}/grab/png/64/64/$roz", timeout=30)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "code_template_unset"
    assert "[pieces] code_template" in error["message"]


@pytest.mark.parametrize("ask", ["post", "icon"])
def test_oven_s_own_routes_answer_a_code_without_a_code_template_with_the_same_422(
        default_oven: OvenProcess, ask: str) -> None:
    # The old routes and oven's own share one validation: a code is never a refused origin.
    if ask == "post":
        response = httpx.post(f"{default_oven.url}/grabs", json={"piece": "$roz"}, timeout=30)
    else:
        response = httpx.get(f"{default_oven.url}/icon/64/$roz.png", timeout=30)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "code_template_unset", response.text


def test_oven_s_own_submission_fills_the_template_s_density_from_the_grab(
        code_oven: OvenProcess, code_server: RecordingServer) -> None:
    response = httpx.post(f"{code_oven.url}/grabs", timeout=30, json={
        "piece": "$rozd", "width": 64, "height": 64, "density": 3})
    assert response.status_code in (200, 202), response.text
    wait_until("the code's page to be asked for",
               lambda: "/k/rozd?density=3&tv&nolabel" in code_server.paths(), timeout=90)


def test_a_code_is_captured_from_its_template_url_with_the_old_decorations(
        code_oven: OvenProcess, code_server: RecordingServer, tmp_path: Path) -> None:
    response = httpx.get(f"{code_oven.url}/grab/png/64/64/$roz?density=2", timeout=90)
    assert response.status_code == 200, response.text
    with Image.open(io.BytesIO(response.content)) as png:
        assert (png.format, png.size) == ("PNG", (128, 128))  # density 2: device pixels
        assert png.convert("RGB").getpixel((64, 64)) == (238, 68, 0)
    assert "/k/roz?density=2&tv&nolabel" in code_server.paths()


@pytest.mark.parametrize("name", [
    "$", "$$x", "$..", "%24%2e%2e", "$%7Bpiece%7D", "%7Bpiece%7D", "$r%C3%B6z", "$" + "a" * 200,
    "$a%20b", "$a%00", "$a%23b", "$a%3Fb", "$a@b",
])
def test_hostile_names_over_http_are_422_json_and_reach_no_page(
        code_oven: OvenProcess, code_server: RecordingServer, name: str) -> None:
    before = len(code_server.paths())
    response = httpx.get(f"{code_oven.url}/grab/png/64/64/{name}", timeout=30)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"].startswith("piece:")
    assert len(code_server.paths()) == before

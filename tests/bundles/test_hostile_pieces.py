"""Hostile pieces against the bundler itself (oven.bundles.Bundler, plain async code) and a real
loopback origin: what is refused, how much is read and asked before it is, and that the event
loop stays free while a bundle is minified. The same pieces through HTTP are in
tests/compat/test_bundle_routes.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from oven.bundles import Bundle, Bundler, BundleRefused
from oven.config import BundlesSettings
from tests.bundles.site import MANY_IMPORTS, WIDE_IMPORTS, PieceSite

SETTINGS = BundlesSettings()


async def bundle(site: PieceSite, piece: str, settings: BundlesSettings = SETTINGS,
                 bundler: Bundler | None = None, *, minify: bool = True) -> tuple[Bundle, bool]:
    return await (bundler or Bundler()).bundle(piece, site.url(piece), settings, minify=minify)


async def refusal(site: PieceSite, piece: str,
                  settings: BundlesSettings = SETTINGS) -> BundleRefused:
    with pytest.raises(BundleRefused) as caught:
        await bundle(site, piece, settings)
    return caught.value


async def test_ten_thousand_imports_stop_at_the_file_bound_having_asked_for_no_more(
        site: PieceSite) -> None:
    settings = BundlesSettings(max_files=50)
    refused = await refusal(site, "many-imports", settings)
    assert (refused.status, refused.code) == (422, "bundle_too_large")
    assert "max_files" in refused.message
    asked = site.requested("/many-imports/m/")
    assert 0 < asked <= settings.max_files, f"{asked} of {MANY_IMPORTS} modules requested"


async def test_an_import_chain_deeper_than_the_bound_is_refused_at_that_depth(
        site: PieceSite) -> None:
    refused = await refusal(site, "deep", BundlesSettings(max_depth=8))
    assert refused.code == "bundle_too_large" and "max_depth" in refused.message
    assert site.requested("/deep/d9.js") == 0


async def test_an_endless_image_is_cut_off_at_the_file_bound(site: PieceSite) -> None:
    settings = BundlesSettings(max_file_bytes=256 * 1024)
    started = time.monotonic()
    refused = await refusal(site, "endless-image", settings)
    assert refused.code == "bundle_too_large" and "max_file_bytes" in refused.message
    # The server would send 1 GiB; stopping at 256 KiB is quick.
    assert time.monotonic() - started < 20


async def test_an_image_that_declares_a_gigabyte_is_refused_before_its_body_is_read(
        site: PieceSite) -> None:
    refused = await refusal(site, "declared-gigabyte")
    assert refused.code == "bundle_too_large" and "max_file_bytes" in refused.message


async def test_a_large_image_named_by_thousands_of_tags_is_refused_before_it_is_copied(
        site: PieceSite) -> None:
    """Two 512 KB files, so within every fetch bound; inlined at each of 2000 <img> tags the
    bundle would be ~1.4 GB. It is refused once what went in passes the bundle bound."""
    settings = BundlesSettings(max_bundle_bytes=16 * 1024 * 1024)
    refused = await refusal(site, "repeated-image", settings)
    assert refused.code == "bundle_too_large" and "max_bundle_bytes" in refused.message
    assert site.requested("/repeated-image/big.png") == 2


async def test_files_adding_up_past_the_total_bound_are_refused(site: PieceSite) -> None:
    refused = await refusal(site, "gallery", BundlesSettings(max_total_bytes=100_000))
    assert refused.code == "bundle_too_large" and "max_total_bytes" in refused.message


@pytest.mark.parametrize("piece", ["redirect-private", "redirect-loopback"])
async def test_a_redirect_off_the_piece_s_origin_is_refused_and_not_followed(
        site: PieceSite, piece: str) -> None:
    refused = await refusal(site, piece)
    assert (refused.status, refused.code) == (422, "fetch_refused")
    assert "not followed" in refused.message


async def test_style_sheets_importing_each_other_and_a_module_importing_itself_are_bundled(
        site: PieceSite) -> None:
    made, _cached = await bundle(site, "css-cycle")
    assert b"<style>.b{color:blue}.a{color:red}</style>" in made.html  # b first: a imports it
    assert any("@import cycle" in warning for warning in made.warnings)
    assert made.html.count(f'"{site.origin}/css-cycle/self.js":'.encode()) == 1
    assert site.requested("/css-cycle/a.css") == 1


async def test_a_content_type_that_is_no_media_type_never_reaches_a_data_url(
        site: PieceSite) -> None:
    made, _cached = await bundle(site, "odd-type")
    assert b'src="data:image/png;base64,iVBORw=="' in made.html  # guessed from the name
    assert b"alert" not in made.html


@pytest.mark.parametrize("piece", ["nested-script", "nested-sheet", "nested-style"])
async def test_brackets_nested_past_what_a_parser_can_take_are_refused_at_once(
        site: PieceSite, piece: str) -> None:
    """200,000 nested brackets in a script kept tree-sitter busy for minutes; 600 in a sheet
    or a style attribute ran Python out of stack (an internal error)."""
    started = time.monotonic()
    refused = await refusal(site, piece)
    assert (refused.status, refused.code) == (422, "bundle_too_large")
    assert "nests brackets more than" in refused.message
    assert time.monotonic() - started < 10


async def test_a_sheet_full_of_css_parse_errors_is_bundled(site: PieceSite) -> None:
    """Bad URLs, an unterminated string, stray closing brackets and an HTML end tag: the
    tokenizer marks them and the browser drops them; so does the bundle (before, writing the
    marks back raised: an internal error). The end tag stays CSS, escaped, never HTML."""
    made, _cached = await bundle(site, "bad-css")
    assert b"<\\/style><script>x<\\/script>" in made.html
    assert b"</style><script>" not in made.html


async def test_a_redirect_loop_stops_at_the_redirect_bound(site: PieceSite) -> None:
    refused = await refusal(site, "redirect-loop", BundlesSettings(max_redirects=3))
    assert refused.code == "fetch_refused" and "max_redirects" in refused.message
    assert site.requested("/redirect-loop/loop.js") == 4


async def test_a_redirect_on_the_piece_s_own_origin_is_followed(site: PieceSite) -> None:
    made, _cached = await bundle(site, "redirect-same")
    assert b"followed" in made.html and made.warnings == ()


async def test_a_file_on_another_origin_is_left_as_it_is_with_a_warning_and_not_fetched(
        site: PieceSite) -> None:
    before = site.requested("/gallery/classic.js")
    made, _cached = await bundle(site, "cross-origin")
    assert f"http://localhost:{site.port}/gallery/classic.js".encode() in made.html
    assert any("another origin" in warning for warning in made.warnings)
    assert site.requested("/gallery/classic.js") == before


async def test_a_script_the_minifier_cannot_read_is_kept_as_it_is_with_a_warning(
        site: PieceSite) -> None:
    made, _cached = await bundle(site, "broken-script")
    assert b"let = = ;( // not JavaScript" in made.html
    assert b"window.ok=1" in made.html  # the readable one is minified all the same
    assert any("not minified" in warning for warning in made.warnings)


async def test_a_piece_slower_than_the_time_bound_is_refused_in_that_time(
        site: PieceSite) -> None:
    started = time.monotonic()
    refused = await refusal(site, "slow", BundlesSettings(timeout_s=1.5))
    assert (refused.status, refused.code) == (422, "bundle_timeout")
    assert time.monotonic() - started < 10


async def test_builds_past_concurrency_and_waiting_room_are_refused_429(
        site: PieceSite) -> None:
    settings = BundlesSettings(concurrency=1, max_waiting=0, timeout_s=5)
    bundler = Bundler()
    slow = asyncio.ensure_future(bundle(site, "slow", settings, bundler))
    await asyncio.sleep(0)  # the slow build takes the only slot
    with pytest.raises(BundleRefused) as caught:
        await bundle(site, "gallery", settings, bundler)
    assert (caught.value.status, caught.value.code) == (429, "busy")
    # The same piece joins the build under way instead of being refused.
    joined = asyncio.ensure_future(bundle(site, "slow", settings, bundler))
    for task in (slow, joined):
        with pytest.raises(BundleRefused):
            await task


async def test_the_same_sources_are_a_cache_hit_and_the_cache_keeps_to_its_bound(
        site: PieceSite) -> None:
    bundler = Bundler()
    first, cached = await bundle(site, "redirect-same", bundler=bundler)
    assert not cached
    again, cached = await bundle(site, "redirect-same", bundler=bundler)
    assert cached and again.hash == first.hash
    second, _cached = await bundle(site, "broken-script")
    bound = max(first.size, second.size)  # room for either, not both
    small = BundlesSettings(cache_max_bytes=bound)
    await bundle(site, "broken-script", small, bundler)
    assert [entry.piece for entry in bundler.cache.entries()] == ["broken-script"]
    assert bundler.cache.bytes <= bound
    none = BundlesSettings(cache_max_bytes=0)
    await bundle(site, "redirect-same", none, bundler)
    assert bundler.cache.bytes == 0 and bundler.cache.entries() == []


async def test_the_event_loop_keeps_turning_while_a_large_bundle_is_minified(
        site: PieceSite) -> None:
    """Parsing and minifying run on a worker thread (tdewolff/minify releases the GIL): the
    loop's longest stall while ~400 KB of JavaScript is parsed and minified stays short.

    A stall counts only the time the loop's thread was not waiting for a CPU (its run delay in
    /proc's schedstat is taken off): beside a CPU hog the kernel alone can keep a runnable
    thread off both cores for longer than the bound (a run beside `stress --cpu 2` failed so),
    while a held GIL keeps the loop asleep, not queued."""
    piece = site.root / "big-script"
    piece.mkdir(exist_ok=True)
    (piece / "index.html").write_text('<!doctype html><script src="big.js"></script>')
    lines = (f"function f{i}(alpha, beta) {{ return `${{alpha}}-{i}` + beta * {i}; }}\n"
             for i in range(5_500))
    (piece / "big.js").write_text("".join(lines))
    stalls: list[float] = []
    done = asyncio.Event()

    queued_s = _run_delay(threading.get_native_id())

    async def heartbeat() -> None:
        last, queued = time.monotonic(), queued_s()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now, now_queued = time.monotonic(), queued_s()
            stalls.append(now - last - 0.01 - (now_queued - queued))
            last, queued = now, now_queued

    beating = asyncio.ensure_future(heartbeat())
    started = time.monotonic()
    made, _cached = await bundle(site, "big-script")
    took = time.monotonic() - started
    done.set()
    await beating
    assert made.size < made.source_bytes and made.warnings == ()
    assert max(stalls) < 0.25, f"the loop stalled {max(stalls):.2f} s in a {took:.2f} s bundle"


def _run_delay(tid: int) -> Callable[[], float]:
    """Seconds thread `tid` has spent runnable but waiting for a CPU (schedstat's 2nd field)."""
    path = Path(f"/proc/self/task/{tid}/schedstat")
    return lambda: int(path.read_text().split()[1]) / 1e9


async def test_a_script_over_the_minify_bound_is_inlined_as_it_is_with_a_warning(
        site: PieceSite) -> None:
    made, _cached = await bundle(site, "gallery", BundlesSettings(max_minify_bytes=300))
    assert b"comments and whitespace the minifier takes out" not in made.html  # CSS: linear
    assert b"// One instance for every importer" not in made.html  # state.js: small
    over = [w for w in made.warnings if "max_minify_bytes" in w]
    assert any("main.js" in w for w in over) and all("state.js" not in w for w in over)


async def test_every_import_of_a_large_module_is_found_and_none_that_only_look_like_one(
        site: PieceSite) -> None:
    """The module is read by a JavaScript parser in windows (so the event loop gets turns):
    imports on the windows' edges are found once, imports in comments and strings never."""
    made, _cached = await bundle(site, "wide-imports")
    assert made.files == WIDE_IMPORTS + 2 and made.warnings == ()
    for i in range(WIDE_IMPORTS):
        assert f'"{site.origin}/wide-imports/w/{i}.js":"data:'.encode() in made.html
    assert site.requested("/wide-imports/no") == 0

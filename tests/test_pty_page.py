"""The web terminal page in real Chromium on a real `oven serve`: a 1 MiB paste arrives whole."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.oven_process import OvenProcess

TOKEN = "pty-page-token"
CHROMIUM = "/usr/bin/chromium"
PASTE_BYTES = 1024 * 1024
PASTE_TIMEOUT_S = 60
ARTIFACTS = Path(__file__).resolve().parents[1] / "var" / "artifacts"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# The last rows of xterm's buffer as text: what a person would see after scrolling to the end.
READ_TAIL = """rows => {
  const buffer = window.term.buffer.active;
  const lines = [];
  for (let y = Math.max(0, buffer.length - rows); y < buffer.length; y++) {
    lines.push(buffer.getLine(y).translateToString(true));
  }
  return lines.join("\\n");
}"""


@pytest.fixture
def oven(tmp_path: Path) -> Iterator[OvenProcess]:
    process = OvenProcess(tmp_path, config={
        "pty": {"enabled": True, "token": TOKEN},
        # Echo off: with echo on, the tty's echo and cat's copy interleave at arbitrary byte
        # boundaries and can split the marker. READY tells the test stty has run.
        "pty.profiles.cat": {"command": ["sh", "-c", "stty -echo; echo READY; exec cat"]},
        "pty.profiles.exit3": {"command": ["sh", "-c", "read line; echo \"got $line\"; exit 3"]},
    }).start()
    yield process
    process.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


def paste_text(size: int, marker: str) -> str:
    """Printable lines under 200 characters (cooked ttys cut lines at 4095), then the marker."""
    lines: list[str] = []
    total = 0
    n = 0
    while total < size:
        line = f"{n:07d} " + "the quick brown fox jumps over the lazy dog " * 3
        lines.append(line)
        total += len(line) + 1
        n += 1
    lines.append(marker)
    return "\n".join(lines) + "\n"


def wait_for(page: Page, predicate: str, arg: object = None, *, timeout_s: float) -> None:
    """Poll `predicate(arg)` in the page until true. Not page.wait_for_function: that evaluates
    its predicate with eval(), which the page's Content-Security-Policy rightly refuses."""
    waited = page.evaluate(
        f"""async ([arg, timeoutMs]) => {{
          const predicate = {predicate};
          const deadline = performance.now() + timeoutMs;
          while (!predicate(arg)) {{
            if (performance.now() > deadline) return false;
            await new Promise(resolve => setTimeout(resolve, 20));
          }}
          return true;
        }}""",
        [arg, timeout_s * 1000],
    )
    state = page.evaluate("() => window.pty")
    assert waited, f"not true within {timeout_s} s: {predicate} (page state {state})"


def open_terminal(page: Page, oven: OvenProcess, profile: str) -> None:
    page.goto(f"{oven.url}/pty?token={TOKEN}&profile={profile}")
    wait_for(page, "() => window.pty && window.pty.phase === 'running'", timeout_s=20)


def save_screenshot(page: Page, tmp_path: Path) -> Path:
    shot = tmp_path / "pty-page.png"
    page.screenshot(path=str(shot))
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "pty-page.png").write_bytes(shot.read_bytes())
    except OSError:
        pass  # the tmp copy is the one the test checks; the artifact copy is a convenience
    return shot


def test_a_1_mib_paste_into_the_page_reaches_cat_and_comes_back_in_the_terminal(
    oven: OvenProcess, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1000, "height": 640})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    page.on("console", on_console)
    open_terminal(page, oven, "cat")
    wait_for(page, f"() => ({READ_TAIL})(500).includes('READY')", timeout_s=15)

    marker = f"END-OF-PASTE-{uuid.uuid4().hex}"
    text = paste_text(PASTE_BYTES, marker)
    t0 = time.perf_counter()
    # term.paste() is what a browser paste does: it goes out through xterm's onData.
    page.evaluate("text => window.term.paste(text)", text)
    wait_for(page, f"marker => ({READ_TAIL})(50).split(marker).length - 1 >= 1", marker,
             timeout_s=PASTE_TIMEOUT_S)
    elapsed = time.perf_counter() - t0

    # Cooked `cat` without echo: cat writes every line back, each newline turned into "\r\n",
    # after the "READY\r\n" line. Every byte must come back, none twice.
    expected = len("READY\r\n") + len(text) + text.count("\n")
    wait_for(page, f"() => window.pty.rendered >= {expected}", timeout_s=10)
    state = page.evaluate("() => window.pty")
    assert state["rendered"] == state["received"] == expected, state
    assert state["resyncs"] == 0 and state["lost"] == 0, state
    wait_for(page, f"() => window.pty.acked === {expected}", timeout_s=5)
    tail = page.evaluate(f"({READ_TAIL})", 50)
    assert tail.count(marker) == 1, tail[-500:]

    shot = save_screenshot(page, tmp_path)
    assert shot.is_file() and shot.read_bytes()[:8] == PNG_MAGIC
    assert not problems, problems
    print(f"1 MiB paste through the page: {len(text) / elapsed / 1e6:.1f} MB/s, "
          f"{expected} bytes echoed, screenshot {shot}")
    page.close()


def test_typing_reaches_the_child_and_its_exit_status_is_shown(
    oven: OvenProcess, browser: Browser
) -> None:
    page = browser.new_page()
    open_terminal(page, oven, "exit3")
    page.locator("#terminal").click()
    page.keyboard.type("typed-by-hand")
    page.keyboard.press("Enter")
    wait_for(page, "() => window.pty.phase === 'exited'", timeout_s=15)
    assert page.evaluate("() => window.pty.exitStatus") == 3
    assert "exited with status 3" in page.locator("#status").inner_text()
    assert "got typed-by-hand" in page.evaluate(f"({READ_TAIL})", 200)
    page.close()


def test_a_wrong_token_shows_the_servers_refusal_and_the_token_form(
    oven: OvenProcess, browser: Browser
) -> None:
    page = browser.new_page()
    page.goto(f"{oven.url}/pty?token=wrong&profile=cat")
    wait_for(page, "() => window.pty.phase === 'failed'", timeout_s=10)
    assert page.locator("#status").inner_text()
    assert page.locator("#login").is_visible()
    page.fill("#login input[name=token]", TOKEN)
    page.click("#login button")
    wait_for(page, "() => window.pty.phase === 'running'", timeout_s=10)
    page.close()


def test_the_page_and_the_vendored_xterm_are_served_beside_the_session_routes(
    oven: OvenProcess,
) -> None:
    page = httpx.get(f"{oven.url}/pty")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "pty/static/vendor/xterm.js" in page.text
    assert page.headers["referrer-policy"] == "no-referrer"

    for path in ("vendor/xterm.js", "vendor/addon-fit.js", "pty.js"):
        script = httpx.get(f"{oven.url}/pty/static/{path}")
        assert script.status_code == 200, path
        assert "javascript" in script.headers["content-type"], (path, script.headers)
    css = httpx.get(f"{oven.url}/pty/static/vendor/xterm.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    versions = httpx.get(f"{oven.url}/pty/static/vendor/VERSIONS").text
    assert "@xterm/xterm" in versions

    # The page's routes sit beside the API, not over it.
    listing = httpx.get(f"{oven.url}/pty/sessions",
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert listing.status_code == 200 and "sessions" in listing.json()
    assert httpx.get(f"{oven.url}/pty/static/nope.js").status_code == 404

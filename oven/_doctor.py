"""`oven doctor`: check each part oven needs and say what to do about each failure.

Besides the parts oven starts, it renders a probe page in the configured Chromium, as a capture
would, and looks at what came out: whether Latin and CJK text get a real font (not the empty
boxes of a missing glyph), whether emoji come out in colour, and whether WebGL draws.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oven.capture import Browser, BrowserSettings, Slot, new_marker
from oven.config import Settings
from oven.encode import check_ffmpeg
from oven.storage import make_storage
from oven.store import make_store


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _chromium(settings: Settings) -> Check:
    path = settings.browser.executable_path
    if shutil.which(path) is None and not Path(path).is_file():
        return Check("chromium", False, f"not found at {path!r}: install Debian's "
                     "chromium-headless-shell (apt-get install chromium-headless-shell) or "
                     "set [browser] executable_path")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("chromium", False, f"{path} --version failed: {exc}")
    if out.returncode != 0:
        return Check("chromium", False, f"{path} --version exited {out.returncode}: "
                     f"{out.stderr.strip()[-200:]}")
    return Check("chromium", True, out.stdout.strip())


def _ffmpeg(settings: Settings) -> Check:
    problem = check_ffmpeg(settings.encoder)
    if problem:
        return Check("ffmpeg", False, problem)
    return Check("ffmpeg", True, f"{settings.encoder.ffmpeg_path} usable for every format")


def _webp_tools(settings: Settings) -> list[Check]:
    """Debian's webp tools, each needed while the setting that has oven use it is on."""
    encoder = settings.encoder
    return [
        _webp_tool("webpmux", encoder.webpmux_path, "canvas_frames", encoder.canvas_frames,
                   without="lossy WebP then takes JPEG screenshots and ffmpeg (~0.3 CPU-s more "
                   "a grab)", does="canvas frames assembled as they are"),
        _webp_tool("img2webp", encoder.img2webp_path, "img2webp", encoder.img2webp,
                   without="a lossy animated WebP from JPEG frames fails (with the setting "
                   "off, ffmpeg encodes it)", does="lossy animated WebP from JPEG frames"),
    ]


def _webp_tool(name: str, path: str, setting: str, used: bool, *, without: str,
               does: str) -> Check:
    if not used:
        return Check(name, True, f"not needed: [encoder] {setting} = false")
    if shutil.which(path) is None:
        return Check(name, False, f"not found at {path!r}: {without}; install Debian's webp "
                     f"(apt-get install webp) or set [encoder] {setting} = false")
    return Check(name, True, f"{path}: {does}")


def _data_dir(settings: Settings) -> Check:
    path = settings.server.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".doctor-probe"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("data_dir", False, f"{path} is not writable ({exc.strerror}): "
                     "set [server] data_dir to a writable directory")
    free = shutil.disk_usage(path).free
    return Check("data_dir", True, f"{path.resolve()} writable, {free / 2**30:.1f} GiB free")


async def _reachable(name: str, backend: str, part: Any, probe: str) -> Check:
    """Start a storage or store backend, run its probe, close it; each step bounded."""
    try:
        async with asyncio.timeout(20):
            await part.start()
        async with asyncio.timeout(20):
            await getattr(part, probe)()
    except Exception as exc:
        return Check(name, False, f"{backend}: {exc}")
    finally:
        await part.close()
    return Check(name, True, f"{backend} reachable")


# A capture draws text the page's way: the generic family, Chromium's fallback for the rest.
# U+0378 is unassigned: no font has it, so it is drawn as the primary font's missing-glyph box,
# and a sample character drawn exactly like it has no font either.
FONT_SAMPLES: dict[str, str] = {"Latin": "Hamburgefonstiv", "CJK": "永字體かなカナ한글"}
EMOJI_SAMPLES = "😀🎨🚀❤️"  # ❤️ is text by default: the VS16 asks for its colour form
FONT_PACKAGES = {"Latin": "fonts-liberation fonts-dejavu-core", "CJK": "fonts-wqy-microhei"}
EMOJI_PACKAGE = "fonts-noto-color-emoji"
# Switches seen in the wild that leave a GPU-less Chromium without WebGL (SwiftShader is its
# software GL; --disable-software-rasterizer takes it away).
WEBGL_OFF_SWITCHES = ("--disable-webgl", "--disable-3d-apis", "--disable-software-rasterizer")
GL_CLEAR = (255, 0, 128, 255)
PROBE_STEP_TIMEOUT_S = 20.0

PROBE_JS = """({latin, cjk, emoji, clear}) => {
  const size = 64, canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d', {willReadFrequently: true});
  const draw = (text) => {
    ctx.clearRect(0, 0, size, size);
    ctx.font = '40px sans-serif';
    ctx.fillStyle = '#000';
    ctx.textBaseline = 'middle';
    ctx.fillText(text, 4, size / 2);
    return ctx.getImageData(0, 0, size, size).data;
  };
  const same = (a, b) => a.every((v, i) => v === b[i]);
  const inked = (d) => {
    for (let i = 3; i < d.length; i += 4) if (d[i]) return true;
    return false;
  };
  // A pixel is coloured when its channels differ by more than antialiasing of black can make.
  const coloured = (d) => {
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a && Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
    return n;
  };
  const box = draw('\\u0378');
  const missing = (text) => [...text].filter((ch) => {
    const d = draw(ch);
    return !inked(d) || same(d, box);
  });
  const grey = [...new Intl.Segmenter().segment(emoji)].map((s) => s.segment)
    .filter((e) => coloured(draw(e)) < 20);

  const gl_canvas = document.createElement('canvas');
  let why = '';
  gl_canvas.addEventListener('webglcontextcreationerror', (e) => { why = e.statusMessage; });
  const gl = gl_canvas.getContext('webgl');
  const webgl = {context: !!gl, why};
  if (gl) {
    const info = gl.getExtension('WEBGL_debug_renderer_info');
    webgl.renderer = gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER);
    gl.clearColor(clear[0] / 255, clear[1] / 255, clear[2] / 255, clear[3] / 255);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const px = new Uint8Array(4);
    gl.readPixels(0, 0, 1, 1, gl.RGBA, gl.UNSIGNED_BYTE, px);
    webgl.pixel = Array.from(px);
    webgl.version2 = !!document.createElement('canvas').getContext('webgl2');
  }
  return {missing: {Latin: missing(latin), CJK: missing(cjk)}, grey, webgl};
}"""


def _probe_html() -> str:
    spans = {"Latin": FONT_SAMPLES["Latin"], "CJK": FONT_SAMPLES["CJK"], "emoji": EMOJI_SAMPLES}
    return "<!doctype html><meta charset=utf-8><body>" + "".join(
        f'<p id="{key}" style="font: 40px sans-serif">{text}</p>' for key, text in spans.items())


async def _font_names(slot: Slot) -> dict[str, list[str]]:
    """The fonts Chromium drew each sample with (CSS.getPlatformFontsForNode): for the report."""
    cdp = slot.cdp
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = (await cdp.send("DOM.getDocument"))["root"]["nodeId"]
    names: dict[str, list[str]] = {}
    for key in ("Latin", "CJK", "emoji"):
        node = await cdp.send("DOM.querySelector", {"nodeId": root, "selector": f"#{key}"})
        fonts = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})
        names[key] = [f["familyName"] for f in fonts["fonts"]]
    return names


class _ProbeFailed(Exception):
    """The probe got no answer: what failed, and what to do."""


def _first_line(exc: BaseException) -> str:
    # Playwright appends Chromium's whole command line and log to its messages.
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


async def _render_probe(settings: BrowserSettings) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Launch Chromium as oven does, render the probe, close it; every step bounded."""
    settings = settings.model_copy(update={"pages": 1})
    try:
        # Playwright's own launch timeout is the bound; this one is in case it does not hold.
        async with asyncio.timeout(settings.launch_timeout_s + PROBE_STEP_TIMEOUT_S):
            browser = await Browser.launch(settings, marker=new_marker())
    except Exception as exc:
        raise _ProbeFailed(f"Chromium did not start: {_first_line(exc)}: check [browser] "
                           "executable_path, args and launch_timeout_s") from exc
    try:
        async with browser.page_slot(timeout_s=PROBE_STEP_TIMEOUT_S) as slot:
            async with asyncio.timeout(PROBE_STEP_TIMEOUT_S):
                await slot.page.set_content(_probe_html())
            async with asyncio.timeout(PROBE_STEP_TIMEOUT_S):
                found = await slot.page.evaluate(PROBE_JS, {
                    "latin": FONT_SAMPLES["Latin"], "cjk": FONT_SAMPLES["CJK"],
                    "emoji": EMOJI_SAMPLES, "clear": GL_CLEAR})
            try:
                async with asyncio.timeout(PROBE_STEP_TIMEOUT_S):
                    names = await _font_names(slot)
            except Exception:
                names = {}  # only the report's font names are lost
    except Exception as exc:
        raise _ProbeFailed(f"the probe page did not render (each step is given "
                           f"{PROBE_STEP_TIMEOUT_S:g} s): {_first_line(exc)}") from exc
    finally:
        await browser.close(timeout_s=settings.close_timeout_s)
    return found, names


def _fonts(missing: dict[str, list[str]], names: dict[str, list[str]]) -> Check:
    lacking = [script for script in FONT_SAMPLES if missing[script]]
    found = [f"{script}: {', '.join(names.get(script, [])) or 'a font'}"
             for script in FONT_SAMPLES if script not in lacking]
    if not lacking:
        return Check("fonts", True, "; ".join(found))
    lost = [f"{script}: no font for {len(missing[script])} of {len(FONT_SAMPLES[script])} "
            f"characters ({''.join(missing[script])} drawn as empty boxes or not at all)"
            for script in lacking]
    packages = " ".join(FONT_PACKAGES[script] for script in lacking)
    return Check("fonts", False, "; ".join(lost) + f": apt-get install {packages} (or check "
                 f"FONTCONFIG_FILE and `fc-list`)" + "".join(f"; {f}" for f in found))


def _emoji(grey: list[str], names: list[str]) -> Check:
    drawn_by = f" by {', '.join(names)}" if names else ""
    if grey:
        return Check("emoji", False, f"{''.join(grey)} drawn without colour{drawn_by}: "
                     f"apt-get install {EMOJI_PACKAGE}")
    return Check("emoji", True, f"{EMOJI_SAMPLES} drawn in colour{drawn_by}")


def _webgl(webgl: dict[str, Any], args: list[str]) -> Check:
    if not webgl["context"]:
        off = [a for a in args if a in WEBGL_OFF_SWITCHES]
        why = f" ({webgl['why']})" if webgl["why"] else ""
        if off:
            return Check("webgl", False, f"no WebGL context{why}: remove "
                         f"{' and '.join(off)} from [browser] args")
        return Check("webgl", False, f"no WebGL context{why}: check [browser] args keep "
                     "--use-angle=swiftshader and --enable-unsafe-swiftshader (WebGL "
                     "without a GPU runs on SwiftShader)")
    renderer = webgl["renderer"]
    if tuple(webgl["pixel"]) != GL_CLEAR:
        return Check("webgl", False, f"renderer {renderer} read back {tuple(webgl['pixel'])} "
                     f"after a clear to {GL_CLEAR}: check [browser] args keep "
                     "--use-angle=swiftshader")
    versions = "WebGL 1 and 2" if webgl["version2"] else "WebGL 1 (no WebGL 2)"
    return Check("webgl", True, f"{versions}, renderer {renderer}, a clear read back exact")


def browser_checks(settings: BrowserSettings) -> list[Check]:
    """Fonts, colour emoji and WebGL as the configured Chromium renders them."""
    try:
        found, names = asyncio.run(_render_probe(settings))
    except _ProbeFailed as exc:
        return [Check("render", False, str(exc))]
    return [_fonts(found["missing"], names), _emoji(found["grey"], names.get("emoji", [])),
            _webgl(found["webgl"], settings.args)]


async def _remote(settings: Settings) -> list[Check]:
    data_dir = settings.server.data_dir
    return [
        await _reachable("storage", settings.storage.backend,
                         make_storage(settings.storage, data_dir), "check"),
        await _reachable("store", settings.store.backend,
                         make_store(settings.store, data_dir), "ping"),
    ]


def run_checks(settings: Settings) -> list[Check]:
    if settings.cluster.role == "api":
        # An api instance runs neither Chromium nor ffmpeg: its host need not have them.
        return _api_checks(settings)
    checks = [_data_dir(settings), _chromium(settings), _ffmpeg(settings),
              *_webp_tools(settings)]

    checks += asyncio.run(_remote(settings))
    if checks[1].ok:
        checks += browser_checks(settings.browser)
    else:
        checks.append(Check("render", False, "probe page not rendered: chromium failed above"))
    if os.geteuid() == 0 and "--no-sandbox" not in settings.browser.args:
        checks.append(Check("sandbox", False, "running as root needs --no-sandbox in "
                            "[browser] args (Chromium refuses to start otherwise)"))
    return checks


def _api_checks(settings: Settings) -> list[Check]:
    skipped = Check("capture", True, 'cluster.role = "api": Chromium and ffmpeg not needed here '
                    "(they are checked on the workers)")

    return [_data_dir(settings), skipped, *asyncio.run(_remote(settings))]

"""A piece origin for the bundle tests: a loopback HTTP server with the test pieces of
tests/bundles/pieces (their images made here with Pillow, a font copied from the system), and
hostile pieces made on the fly: redirects off the origin, 10k imports, import chains deeper than
the bound, an endless image, an image that declares 1 GB, a page that is not HTML.

tests/security/servers.py's RecordingServer answers whole bodies with a Content-Length; an
endless image needs a streamed body, hence this server of its own.
"""

from __future__ import annotations

import io
import mimetypes
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

PIECES = Path(__file__).parent / "pieces"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
MANY_IMPORTS = 10_000
DEEP_CHAIN = 100
WIDE_IMPORTS = 150
REPEATS = 2000  # <img> tags naming the same two 512 KB images: ~1.4 GB if each were inlined

_Answer = tuple[int, str, bytes | None, dict[str, str]]


def _png(size: tuple[int, int], colors: list[tuple[int, int, int]]) -> bytes:
    image = Image.new("RGB", size)
    for x in range(size[0]):
        for y in range(size[1]):
            image.putpixel((x, y), colors[(x // 2 + y // 2) % len(colors)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def make_site(root: Path) -> Path:
    """The test pieces under `root`, with the binary files they load."""
    shutil.copytree(PIECES, root, dirs_exist_ok=True)
    img = root / "gallery" / "img"
    img.mkdir(parents=True, exist_ok=True)
    (img / "sprite.png").write_bytes(_png((16, 16), [(255, 0, 0), (0, 255, 0), (0, 0, 255)]))
    (img / "stripe.png").write_bytes(_png((8, 8), [(250, 250, 250), (40, 40, 40)]))
    (img / "bg.png").write_bytes(_png((12, 12), [(16, 32, 48), (32, 16, 48)]))
    fonts = root / "gallery" / "fonts"
    fonts.mkdir(exist_ok=True)
    shutil.copyfile(FONT, fonts / "piece.ttf")
    return root


@contextmanager
def piece_site(root: Path) -> Iterator[PieceSite]:
    """The test pieces copied under `root` and served; for a fixture of any scope."""
    with PieceSite(make_site(root)).running() as site:
        yield site


class PieceSite:
    """Serves `root` and the hostile pieces on 127.0.0.1; `paths` records every request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths: list[str] = []
        self._lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # an endless body ends with the connection

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                with site._lock:
                    site.paths.append(self.path)
                status, kind, body, headers = site.answer(path)
                self.send_response(status)
                self.send_header("content-type", kind)
                for name, value in headers.items():
                    self.send_header(name, value)
                if body is not None and "content-length" not in headers:
                    self.send_header("content-length", str(len(body)))
                self.end_headers()
                try:
                    if body is not None:
                        self.wfile.write(body)
                    elif path.endswith("/endless.png"):
                        site._endless(self.wfile)
                    elif path.endswith("/slow.js"):
                        time.sleep(30)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the test wants

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def template(self) -> str:
        return self.origin + "/{piece}/"

    def url(self, piece: str) -> str:
        return f"{self.origin}/{piece}/"

    def requested(self, fragment: str) -> int:
        with self._lock:
            return sum(1 for p in self.paths if fragment in p)

    @contextmanager
    def running(self) -> Iterator[PieceSite]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=10)

    @staticmethod
    def _endless(out: io.BufferedIOBase) -> None:
        chunk = b"\0" * 65536
        for _ in range(16384):  # 1 GiB at most, if nothing stops reading before
            out.write(chunk)

    def answer(self, path: str) -> _Answer:
        html = "text/html; charset=utf-8"
        js = "text/javascript"
        page = re.fullmatch(r"/([a-z0-9-]+)/", path)
        name = page.group(1) if page else ""
        if path == "/redirect-private/":
            return 200, html, b'<!doctype html><script src="evil.js"></script>', {}
        if path == "/redirect-private/evil.js":
            return 302, js, b"", {"location": "http://169.254.169.254/latest/meta-data/"}
        if path == "/redirect-loopback/":
            return 200, html, b'<!doctype html><img src="pic.png">', {}
        if path == "/redirect-loopback/pic.png":
            # Another origin on the same host: a different port is another origin.
            return 302, "image/png", b"", {"location": "http://127.0.0.1:1/secret.png"}
        if path == "/redirect-same/":
            return 200, html, b'<!doctype html><script src="old.js"></script>', {}
        if path == "/redirect-same/old.js":
            return 301, js, b"", {"location": "/redirect-same/new/real.js"}
        if path == "/redirect-same/new/real.js":
            return 200, js, b"window.moved = 'followed';", {}
        if path == "/redirect-loop/":
            return 200, html, b'<!doctype html><script src="loop.js"></script>', {}
        if path == "/redirect-loop/loop.js":
            return 302, js, b"", {"location": "/redirect-loop/loop.js"}
        if path == "/many-imports/":
            return 200, html, b'<!doctype html><script type="module" src="main.js"></script>', {}
        if path == "/many-imports/main.js":
            lines = "".join(f'import "./m/{i}.js";\n' for i in range(MANY_IMPORTS))
            return 200, js, lines.encode(), {}
        if m := re.fullmatch(r"/many-imports/m/(\d+)\.js", path):
            return 200, js, f"window.m{m.group(1)} = 1;".encode(), {}
        if path == "/wide-imports/":
            return 200, html, b'<!doctype html><script type="module" src="main.js"></script>', {}
        if path == "/wide-imports/main.js":
            # Imports spread over ~50 KB (the parser's windows are 32 KB), with comments and
            # strings that only look like imports.
            lines = "".join(f'import "./w/{i}.js"; /* import "./no{i}.js" */ '
                            f'const s{i} = "import(\'./no.js\')"; // {"x" * (200 + i % 120)}\n'
                            for i in range(WIDE_IMPORTS))
            return 200, js, lines.encode(), {}
        if m := re.fullmatch(r"/wide-imports/w/(\d+)\.js", path):
            return 200, js, f"export const w{m.group(1)} = 1;".encode(), {}
        if path == "/css-cycle/":
            return 200, html, (b'<!doctype html><link rel="stylesheet" href="a.css">'
                               b'<script type="module" src="self.js"></script>'), {}
        if path == "/css-cycle/a.css":
            return 200, "text/css", b'@import "b.css"; .a { color: red }', {}
        if path == "/css-cycle/b.css":
            return 200, "text/css", b'@import "a.css"; .b { color: blue }', {}
        if path == "/css-cycle/self.js":
            return 200, js, b'import "./self.js"; window.selfImported = true;', {}
        if path == "/repeated-image/":
            tags = "".join(f'<img src="big.png?{i % 2}">' for i in range(REPEATS))
            return 200, html, f"<!doctype html>{tags}".encode(), {}
        if path == "/repeated-image/big.png":
            return 200, "image/png", b"\x89PNG" + bytes(512 * 1024), {}
        if path == "/odd-type/":
            return 200, html, b'<!doctype html><img src="pic.png">', {}
        if path == "/odd-type/pic.png":
            return 200, 'text/html,<script>alert(1)</script>', b"\x89PNG", {}
        if path == "/nested-script/":
            return 200, html, b'<!doctype html><script src="deep.js"></script>', {}
        if path == "/nested-script/deep.js":
            return 200, js, b"x = " + b"[" * 200_000 + b";", {}
        if path == "/nested-sheet/":
            return 200, html, b'<!doctype html><link rel="stylesheet" href="deep.css">', {}
        if path == "/nested-sheet/deep.css":
            return 200, "text/css", b"a { b: " + b"(" * 600 + b"url(x.png)" + b")" * 600 + b"}", {}
        if path == "/nested-style/":
            return 200, html, (b'<!doctype html><p style="b: ' + b"[" * 600 + b'">'
                               b"<style>a{" + b"{" * 600 + b"}</style>"), {}
        if path == "/bad-css/":
            return 200, html, (b'<!doctype html><link rel="stylesheet" href="bad.css">'
                               b'<p style="b: url(a b); c: ) d">'), {}
        if path == "/bad-css/bad.css":
            return 200, "text/css", (b'a { b: url(a b) } ) ] } .s { content: "open\n }\n'
                                     b"</style><script>x</script> .ok { color: red } </style>"), {}
        if path == "/deep/":
            return 200, html, b'<!doctype html><script type="module" src="d0.js"></script>', {}
        if m := re.fullmatch(r"/deep/d(\d+)\.js", path):
            n = int(m.group(1))
            body = f'import "./d{n + 1}.js";' if n < DEEP_CHAIN else "window.deep = true;"
            return 200, js, body.encode(), {}
        if path == "/endless-image/":
            return 200, html, b'<!doctype html><img src="endless.png">', {}
        if path == "/endless-image/endless.png":
            return 200, "image/png", None, {}
        if path == "/declared-gigabyte/":
            return 200, html, b'<!doctype html><img src="big.png">', {}
        if path == "/declared-gigabyte/big.png":
            return 200, "image/png", b"", {"content-length": str(1 << 30)}
        if path == "/not-html/":
            return 200, "image/png", b"\x89PNG\r\n\x1a\n", {}
        if path == "/slow/":
            return 200, html, b'<!doctype html><script src="slow.js"></script>', {}
        if path == "/slow/slow.js":
            return 200, js, None, {}
        if path == "/cross-origin/":
            other = f"http://localhost:{self.port}/gallery/classic.js"
            return 200, html, f'<!doctype html><script src="{other}"></script>'.encode(), {}
        if path == "/broken-script/":
            return 200, html, (b'<!doctype html><script>window.ok = 1;</script>'
                               b'<script src="bad.js"></script>'), {}
        if path == "/broken-script/bad.js":
            return 200, js, b"let = = ;( // not JavaScript\n", {}
        return self._file(path if not name else f"{path}index.html")

    def _file(self, path: str) -> _Answer:
        target = (self.root / path.lstrip("/")).resolve()
        if not target.is_relative_to(self.root.resolve()) or not target.is_file():
            return 404, "text/plain", b"not found\n", {}
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return 200, kind, target.read_bytes(), {}

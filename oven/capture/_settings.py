"""The capture engine's configuration section: one typed, range-checked schema."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# Debian's chromium-headless-shell: Chromium's headless shell, without the browser's UI. The
# full browser in --headless=new keeps a window, a tab strip and an omnibox per context and does
# their work on every navigation. Measured with Chromium 156 in bench/side_by_side.py (2 rounds,
# beside a test run): the browser process 0.24 -> 0.12 CPU-s a grab, a still 0.51 -> 0.33 CPU-s
# (2.4 -> 3.4 stills/s), peak tree PSS 695 -> 554 MB. The binary itself, not /usr/bin's wrapper:
# that wrapper runs it as a child, and the pid Playwright holds would be the shell's.
DEFAULT_EXECUTABLE = "/usr/lib/chromium/chromium-headless-shell"

DEFAULT_ARGS: list[str] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # WebGL under software rendering: ANGLE on SwiftShader (verified: the webgl piece renders).
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    # Memory, measured on Chromium 156 headless: each window (one per context) pre-loads the
    # omnibox popup as a WebUI page in a renderer of its own (~10 MB PSS less without it), and
    # a spare renderer waits for cross-site navigations our reused tabs do not make (~20 MB).
    # Each window also pre-loads the AI-mode omnibox popup (chrome://omnibox-popup.top-chrome/
    # omnibox_popup_aim.html), another renderer per page slot: ~70 MB of the tree's PSS less
    # with 2 slots (renderers, browser process); a new tab then brings one renderer, not two
    # that its slot would both take as its own.
    # Chromium keeps only the last --disable-features switch, so Playwright's own list (see its
    # chromiumSwitches: HTTP kept on HTTP, PaintHolding off for screenshots, preflighted
    # cross-origin redirects under Fetch interception, third-party storage partitioning, no
    # startup requests to Google) is repeated first; without it an http:// page was first
    # asked for as https:// and failed where that form is refused.
    "--disable-features=AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,"
    "HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,"
    "ThirdPartyStoragePartitioning,AvoidCorsURLLoaderRestartOnRedirect,OptimizationHints,"
    "NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch,"
    "SpareRendererForSitePerProcess,WebUIOmniboxPopup,WebUIOmniboxAimPopup",
    # The network service in the browser process instead of a utility process of its own:
    # ~14 MB less PSS at the peak of a capture run, no CPU cost seen. Chromium keeps only the
    # last --enable-features switch, so Playwright's own (CDPScreenshotNewSurface for
    # screenshots, SkipListAccountsWithoutGaiaCookies) are repeated here.
    "--enable-features=CDPScreenshotNewSurface,SkipListAccountsWithoutGaiaCookies,"
    "NetworkServiceInProcess2",
]

# Playwright's driver holds no more than the protocol messages in flight (a frame is one
# large string, kept outside the young generation), so its V8 needs no 16 MB semi-spaces.
# Measured with Playwright 1.65's driver (node 26): its PSS at the peak of 19 grabs 137 ->
# 116 MB, no CPU cost seen. --jitless (V8's interpreter only) cost the driver ~0.03 CPU-s a
# grab while every frame was a screenshot through it (0.073, 0.082 -> 0.117, 0.101); with canvas
# frames it carries less, and in bench/side_by_side.py (2 pages, 2 runs each) it takes the
# driver's peak PSS 116-124 -> 102-110 MB for 0.004-0.008 CPU-s a grab (0.020-0.029 ->
# 0.026-0.033), stills 0.011 -> 0.012-0.013.
DEFAULT_DRIVER_NODE_OPTIONS = "--max-semi-space-size=1 --jitless"

DEFAULT_BLOCKED: list[str] = [
    "*google-analytics.com*",
    "*googletagmanager.com*",
    "*doubleclick.net*",
    "*googlesyndication.com*",
    "*facebook.net*",
    "*hotjar.com*",
]


class BrowserSettings(BaseModel):
    """How oven runs its one Chromium and captures pieces in it."""

    model_config = ConfigDict(extra="forbid")

    executable_path: str = Field(
        default=DEFAULT_EXECUTABLE, min_length=1, description="Chromium binary to launch."
    )
    nice: int = Field(
        10, ge=0, le=19, description="Niceness of captures: the BrowserPool's loop thread, "
        "Playwright's driver and Chromium, so the HTTP loop and the actors get the CPU first on "
        "a busy host (0 = oven's own priority). Takes effect at the next start."
    )
    args: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ARGS), description="Chromium command-line switches."
    )
    driver_node_options: str = Field(
        default=DEFAULT_DRIVER_NODE_OPTIONS, max_length=1000,
        description="NODE_OPTIONS for Playwright's node driver, before any the environment "
        "holds (node accepts only some V8 flags there). The default keeps its young generation "
        "at 1 MB semi-spaces (~20 MB less PSS at the peak of a capture run, no CPU cost seen) "
        "and runs V8's interpreter only (--jitless: ~12 MB less for ~0.005 CPU-s a grab). "
        "Takes effect at the next launch.",
    )
    pages: int = Field(
        default=2, ge=1, le=16,
        description='Page slots (concurrent captures); "auto" (in a service config) fits as many '
        "as the memory budget holds at memory.page_cost_bytes each.",
    )
    restart_after: int = Field(
        default=100, ge=1, le=100_000, description="Jobs before the browser asks to be recycled."
    )
    ready_expression: str = Field(
        default="window.ovenReady === true",
        min_length=1,
        description="JS expression that is true once a piece has drawn its first frame.",
    )
    ready_rule: Literal["auto", "contract"] = Field(
        default="auto",
        description="auto: a page that declares the contract (ready_declared_expression) waits "
        "for ready_expression; any other page is ready once loaded and painted_frames frames "
        "painted. contract: every page waits for ready_expression (or the timeout).",
    )
    ready_declared_expression: str = Field(
        default="'ovenReady' in window", min_length=1,
        description="JS expression that is true once a page has declared it follows the ready "
        "contract (a piece sets window.ovenReady = false early, true when ready).",
    )
    painted_frames: int = Field(
        default=3, ge=1, le=120,
        description="Animation frames a page without the contract paints after loading before "
        "it is taken as ready (the painted rule).",
    )
    pace_frames: bool = Field(
        default=True,
        description="Real clock, animations: once the capture starts, run the page's animation "
        "frames only as they are taken (at fps) instead of at the display's 60 Hz.",
    )
    ready_timeout_s: float = Field(
        default=10.0, ge=0.0, le=300.0, description="Wait for the ready expression, then capture."
    )
    navigation_timeout_s: float = Field(
        default=15.0, ge=0.5, le=300.0, description="Load timeout for the piece page."
    )
    blocked_url_patterns: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED),
        description="Glob patterns ('*' wildcard) of URLs a piece may not fetch.",
    )
    frame_format: Literal["png", "jpeg"] = Field(
        default="png",
        description="Frame encoding: png is lossless (exact frames, no double loss when encoding).",
    )
    jpeg_quality: int = Field(default=90, ge=1, le=100, description="Quality of jpeg frames.")
    jobs_per_tab: int = Field(
        default=10, ge=1, le=1000,
        description="Jobs a slot's tab serves before it is replaced. A reused tab saves ~0.35 s "
        "of Chromium CPU per job; its renderer grows ~2 MB per job, so it is renewed.",
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, le=600,
        description="Interval of the cheap health probe; two failures in a row recycle.",
    )
    health_timeout_s: float = Field(
        default=3.0, gt=0, le=60, description="How long one health probe may take."
    )
    launch_timeout_s: float = Field(
        default=30.0, ge=1.0, le=300.0, description="Chromium start-up timeout."
    )
    close_timeout_s: float = Field(
        default=3.0, ge=0.1, le=60.0, description="Closing a page context; past it, recycle."
    )
    reset_timeout_s: float = Field(
        default=10.0, ge=0.1, le=60.0,
        description="Wiping a tab between jobs; past it, the tab is retired and the browser "
        "recycled. Generous on purpose: a wipe is a dozen CDP calls and a navigation, which "
        "take seconds on a loaded host, and a recycle for it only adds load.",
    )
    upstream_proxy: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$",
        description="host:port of an HTTP proxy that pages' requests go out through. Every "
        "request first passes oven's own egress proxy, which checks it against a raw-URL job's "
        "guard; those that pass are handed to this proxy as they came. Chromium's own "
        "--proxy-server switch is overridden by the egress proxy.",
    )
    acquire_timeout_s: float = Field(
        default=60.0, ge=0.1, le=3600.0, description="Default wait for a free page slot."
    )

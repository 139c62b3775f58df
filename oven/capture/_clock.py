"""The clocks a capture runs a page on: init scripts that hand the page's frames to the capturer.

PACED_FRAMES_JS (real clock): the page's requestAnimationFrame runs at the display's rate until
the capture starts; from then on (`__ovenPace.hold()`) callbacks wait for the capturer, which runs
them (`__ovenPace.frame()`, with the real timestamp) just before each screenshot. A page that
animates at 60 Hz would otherwise draw, and Chromium composite, three frames for every one taken
at 20 fps; now it draws exactly the frames that are taken, each fresh at its capture instant.

VIRTUAL_CLOCK_JS:

It replaces requestAnimationFrame/cancelAnimationFrame, performance.now, Date (now and the
argument-less constructor) and setTimeout/setInterval. Time then moves only when the capturer
calls `__ovenClock.advance(ms)`: due timers run in order, then the queued rAF callbacks run with
the new timestamp. Frame k is therefore drawn at exactly t0 + k * 1000/fps however busy the CPU is.
Not covered: CSS animations/transitions, Web Animations, video and audio clocks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Step:
    """How the capturer moves a page on to its next frame: `expression` in the page's world, or
    (canvas frames) the DOM event `event` with `detail`, which the clock's listener runs
    synchronously and cancels to say it did (one CDP round trip a frame instead of two; a page
    that drops its listeners, document.open() for one, is stepped by the expression)."""

    expression: str
    event: str
    detail: float


def virtual_step(ms: float) -> Step:
    return Step(f"window.__ovenClock.advance({ms!r})", "__oven-advance", ms)


PACED_STEP = Step("window.__ovenPace && window.__ovenPace.frame()", "__oven-pace", 0.0)

PACED_FRAMES_JS = r"""
(() => {
  if (window.__ovenPace) return;
  const realRaf = window.requestAnimationFrame.bind(window);
  const realCancel = window.cancelAnimationFrame.bind(window);
  let held = false, seq = 0, queue = new Map();
  // Callbacks requested before the hold: our id -> Chromium's id and the callback. The hold
  // takes them back from Chromium, or the next frame Chromium makes (a screenshot's) would run
  // them and draw a frame the capturer did not ask for, between its step and its screenshot.
  const live = new Map();
  const report = (e) => {
    if (typeof reportError === "function") reportError(e); else console.error(e);
  };
  window.requestAnimationFrame = (cb) => {
    const id = ++seq;
    if (held) queue.set(id, cb);
    else live.set(id, { real: realRaf((t) => { live.delete(id); cb(t); }), cb });
    return id;
  };
  window.cancelAnimationFrame = (id) => {
    queue.delete(id);
    const pending = live.get(id);
    if (pending !== undefined) { live.delete(id); realCancel(pending.real); }
  };
  const hold = () => {
    held = true;
    for (const [id, pending] of live) { realCancel(pending.real); queue.set(id, pending.cb); }
    live.clear();
  };
  const frame = () => {
    const due = queue;
    queue = new Map();
    const now = performance.now();
    for (const cb of due.values()) {
      try { cb(now); } catch (e) { report(e); }
    }
  };
  Object.defineProperty(window, "__ovenPace", {
    value: Object.freeze({ hold, frame }),
  });
  // The capturer's step sent with the canvas frame it takes next (see Step).
  document.addEventListener("__oven-pace", (e) => { e.preventDefault(); frame(); });
})();
"""

VIRTUAL_CLOCK_JS = r"""
(() => {
  if (window.__ovenClock) return;
  const RealDate = Date;
  const epoch = RealDate.now();
  let now = 0;
  let rafSeq = 0;
  let rafQueue = new Map();
  let timerSeq = 0;
  const timers = new Map();
  const report = (e) => {
    if (typeof reportError === "function") reportError(e); else console.error(e);
  };
  window.requestAnimationFrame = (cb) => { rafQueue.set(++rafSeq, cb); return rafSeq; };
  window.cancelAnimationFrame = (id) => { rafQueue.delete(id); };
  performance.now = () => now;
  class VirtualDate extends RealDate {
    constructor(...args) { if (args.length === 0) super(epoch + now); else super(...args); }
    static now() { return epoch + now; }
  }
  window.Date = VirtualDate;
  const addTimer = (fn, delay, args, repeat) => {
    const ms = Math.max(0, Number(delay) || 0);
    timers.set(++timerSeq, { due: now + ms, fn, args, every: repeat ? Math.max(1, ms) : 0 });
    return timerSeq;
  };
  window.setTimeout = (fn, delay, ...args) => addTimer(fn, delay, args, false);
  window.setInterval = (fn, delay, ...args) => addTimer(fn, delay, args, true);
  window.clearTimeout = window.clearInterval = (id) => { timers.delete(id); };
  const runTimers = (until) => {
    for (let guard = 0; guard < 10000; guard++) {
      let nextId = 0, next = null;
      for (const [id, t] of timers) {
        if (t.due <= until && (next === null || t.due < next.due)) { nextId = id; next = t; }
      }
      if (next === null) return;
      now = Math.max(now, next.due);
      if (next.every) next.due += next.every; else timers.delete(nextId);
      try {
        if (typeof next.fn === "function") next.fn(...next.args);
      } catch (e) { report(e); }
    }
  };
  const advance = (ms) => {
    const target = now + ms;
    runTimers(target);
    now = target;
    const queue = rafQueue;
    rafQueue = new Map();
    for (const cb of queue.values()) {
      try { cb(now); } catch (e) { report(e); }
    }
    return now;
  };
  Object.defineProperty(window, "__ovenClock", {
    value: Object.freeze({ advance, now: () => now }),
  });
  // The capturer's step sent with the canvas frame it takes next (see Step).
  document.addEventListener("__oven-advance", (e) => {
    if (typeof e.detail === "number") { e.preventDefault(); advance(e.detail); }
  });
})();
"""

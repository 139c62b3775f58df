"""The supervision tree oven serve runs, in start order (stopped in reverse).

    root (one_for_one)
     ├─ store        metadata + durable job queue
     ├─ uploader     result storage
     ├─ encoder      ffmpeg, bounded concurrency
     ├─ browser      Playwright + one Chromium, N pages
     ├─ webhooks     signed result callbacks (grabs, bakes), retried, recorded
     ├─ bakes        tape bakes: records and lifecycle (ffmpeg via encoder, files via uploader)
     ├─ grab_queue   admission, lanes, single-flight, cache, dispatch, retries
     ├─ memory       process-tree sampler, budget, pressure state and its actions
     └─ pty          supervisor of terminal sessions (only with [pty] enabled)
         └─ pty-…    one temporary PtySession actor per terminal

`[cluster] role` picks what runs: `all` runs every child above; `api` starts no encoder,
browser or bakes (it never claims a job, so Chromium and ffmpeg would sit idle; bakes are
encoded where they are received) and runs the uploader only to locate results; `worker`
starts no bakes and no pty (it serves no route that could reach them).
"""

from __future__ import annotations

from oven.actors.baker import Baker
from oven.actors.browser_pool import BrowserPool
from oven.actors.encoder import Encoder
from oven.actors.grab_queue import GrabQueue
from oven.actors.memory_watch import MemoryWatch
from oven.actors.store import StoreActor
from oven.actors.uploader import Uploader
from oven.actors.webhooks import Webhooks
from oven.config import Settings
from oven.readiness import ReadinessBoard
from oven.supervisor import ChildSpec, Supervisor
from oven.system import restart_policy


def children(settings: Settings, board: ReadinessBoard) -> list[ChildSpec]:
    boxes = settings.mailboxes
    specs = [
        ChildSpec(id="store", start=lambda ctx: StoreActor.start(ctx, settings, board),
                  mailbox_capacity=boxes.store, start_timeout_s=30, shutdown_timeout_s=10),
        ChildSpec(id="uploader", start=lambda ctx: Uploader.start(ctx, settings),
                  mailbox_capacity=boxes.uploader, start_timeout_s=30, shutdown_timeout_s=10),
        ChildSpec(id="encoder", start=lambda ctx: Encoder.start(ctx, settings),
                  mailbox_capacity=boxes.encoder, shutdown_timeout_s=10),
        ChildSpec(id="browser", start=lambda ctx: BrowserPool.start(ctx, settings, board),
                  mailbox_capacity=boxes.browser, start_timeout_s=70, shutdown_timeout_s=20),
        # Before grab_queue: it tells "webhooks" results, so it starts earlier, stops later.
        ChildSpec(id="webhooks", start=lambda ctx: Webhooks.start(ctx, settings),
                  mailbox_capacity=settings.webhooks.max_pending, shutdown_timeout_s=10),
        # After encoder, uploader and webhooks (it asks/tells all three), so they outlive it.
        ChildSpec(id="bakes", start=lambda ctx: Baker.start(ctx, settings),
                  mailbox_capacity=settings.bakes.mailbox, shutdown_timeout_s=15),
        ChildSpec(id="grab_queue", start=lambda ctx: GrabQueue.start(ctx, settings, board),
                  mailbox_capacity=boxes.grab_queue, start_timeout_s=40,
                  shutdown_timeout_s=15),
        ChildSpec(id="memory", start=lambda ctx: MemoryWatch.start(ctx, settings, board),
                  mailbox_capacity=boxes.memory, shutdown_timeout_s=5),
    ]
    role = settings.cluster.role
    if role != "all":
        left_out = {"bakes"} | ({"encoder", "browser"} if role == "api" else set())
        specs = [spec for spec in specs if spec.id not in left_out]
    if settings.pty.enabled and role != "worker":
        # Its own registry is the system's (ctx.lookup), so sessions resolve by name too.
        specs.append(ChildSpec(
            id="pty", mailbox_capacity=None, shutdown_timeout_s=20,
            start=lambda ctx: Supervisor.start(ctx, children=[], registry=ctx.lookup,
                                               policy=restart_policy(settings))))
    return specs

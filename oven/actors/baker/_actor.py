"""Baker actor ("bakes"): owns bake records and their lifecycle, queued → running → final.

The HTTP edge streams and checks the archive (it must answer 4xx for a bad one), then hands the
unpacked tape here (Enqueue); or, for a caller that must be answered before anything is fetched
(the old service's POST /bake), only a `url` (Fetch): the Baker records the bake at once, then
fetches, checks and plans it itself, and a refusal fails the bake instead of its request. The
Baker records it in the Store (kind "bakes"), lets at most the encoder's
concurrency of bakes run at once, asks the Encoder (whose own limiter bounds every ffmpeg,
grabs' and bakes' alike) for the MP4 and thumbnail, stores both through the Uploader and tells
the webhooks actor when a bake with a callback_url is final. Work dirs are removed in a finally.

Several instances may share one store: each bake record names its instance, and each Baker
writes a heartbeat ("bake_instances"). A Baker that starts fails only its own interrupted bakes,
and, then and every lease, those of instances whose heartbeat stopped (their tapes are gone).
A reservation made for an upload expires once its upload and check can no longer be running,
so a handler that never released it cannot keep a slot.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import pykka

from oven import metrics
from oven.actors.baker._messages import (
    Admit,
    BakesBusy,
    BakeStatus,
    Enqueue,
    Fetch,
    Release,
    work_root,
)
from oven.actors.baker._records import describe, move, reason, state_of
from oven.actors.encoder import CancelEncode, Encode, EncodeBake
from oven.actors.grab_queue import resolve_instance_id
from oven.actors.runtime import (
    ActorContext,
    AskTimeout,
    AsyncActor,
    Limiter,
    MailboxFull,
    ask_async,
)
from oven.actors.store import StoreClient
from oven.actors.uploader import Upload
from oven.bakes import (
    BakeState,
    callback_payload,
    check_archive,
    fetch_archive,
    plan_bake,
)
from oven.config import Settings
from oven.encode import BakeEncodeRequest, EncodeRequest, Format
from oven.grabs import result_url
from oven.store import StoreUnavailable
from oven.supervisor import ActorUnavailable
from oven.webhooks import DELIVERIES_KIND, DeliveryState

log = logging.getLogger(__name__)

KIND = "bakes"
INSTANCES = "bake_instances"
# A caller's own names for a bake (the old service's mongoId, slug, code), one document each,
# id "<name>:<value>" -> {"bake_id": ...}: the newest bake so named, found without a scan.
REFS = "bake_refs"
SWEEP_LIMIT = 1000
_PEER_ERRORS = (MailboxFull, ActorUnavailable, AskTimeout, pykka.ActorDeadError,
                StoreUnavailable)


class Baker(AsyncActor):
    def __init__(self, ctx: ActorContext, settings: Settings) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.store = StoreClient(ctx.lookup, timeout_s=settings.supervisor.ask_timeout_s)
        self.instance = resolve_instance_id(settings)
        self.reserved: dict[str, float] = {}  # bake id -> when the reservation expires
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.running: set[str] = set()
        self.limiter: Limiter | None = None

    async def start_async(self) -> None:
        self.limiter = Limiter(self.settings.encoder.effective_concurrency())
        metrics.BAKES_ACTIVE.set(0)
        # Owned, not awaited: a slow store must not fail this actor's start. The bakes are
        # spawned (a failing one is logged, the others go on); stop cancels both kinds.
        self.own("keeper", self._keep)

    def reconfigure(self, settings: Any) -> None:
        self.settings = settings
        if self.limiter is not None:
            self.spawn(self.limiter.resize(settings.encoder.effective_concurrency()))

    def receive(self, message: Any) -> Any:
        match message:
            case Admit(bake_id=bake_id):
                return self.defer(self._admit(bake_id))
            case Release(bake_id=bake_id):
                return self.defer(self._release(bake_id))
            case Enqueue():
                return self.defer(self._enqueue(message))
            case Fetch():
                return self.defer(self._fetch(message))
            case BakeStatus():
                return self.defer(self._status())
        return super().receive(message)

    def _active(self) -> int:
        return len(self.reserved) + len(self.tasks)

    def _reservation_s(self) -> float:
        """How long an upload can need its reservation: the body (or the fetch of a `url`),
        the archive check, and the ask that hands the bake over."""
        bakes = self.settings.bakes
        return (max(bakes.upload_timeout_s, bakes.fetch_timeout_s) + bakes.check_timeout_s
                + self.settings.supervisor.ask_timeout_s)

    def _expire_reservations(self) -> None:
        now = time.monotonic()
        for bake_id, expires in list(self.reserved.items()):
            if expires <= now:
                del self.reserved[bake_id]
                log.warning("bake %s: reservation expired without being used or released",
                            bake_id, extra={"bake": bake_id})
        metrics.BAKES_ACTIVE.set(self._active())

    async def _admit(self, bake_id: str) -> None:
        self._expire_reservations()
        if self._active() >= self.settings.bakes.max_active:
            metrics.BAKES.labels(outcome="busy").inc()
            raise BakesBusy(self._active(), retry_after_s=5.0)
        self.reserved[bake_id] = time.monotonic() + self._reservation_s()
        metrics.BAKES_ACTIVE.set(self._active())

    async def _release(self, bake_id: str) -> None:
        self.reserved.pop(bake_id, None)
        metrics.BAKES_ACTIVE.set(self._active())

    async def _status(self) -> dict[str, Any]:
        self._expire_reservations()
        return {"receiving": len(self.reserved), "queued": len(self.tasks) - len(self.running),
                "running": len(self.running), "max_active": self.settings.bakes.max_active}

    def _new_doc(self, bake_id: str, source: str, callback_url: str | None) -> dict[str, Any]:
        return {
            "id": bake_id, "state": BakeState.QUEUED.value, "stage": "queued", "error": None,
            "source": source, "frames": None, "fps": None, "fps_source": None,
            "duration": None, "has_audio": None, "width": None, "height": None, "scale": None,
            "url": None, "thumbnail_url": None, "size": None,
            "callback_url": callback_url, "instance_id": self.instance,
            "created_at": time.time(),
            "started_at": None, "finished_at": None,
        }

    async def _enqueue(self, job: Enqueue) -> dict[str, Any]:
        doc = self._new_doc(job.bake_id, job.source, job.callback_url)
        describe(doc, job.tape, job.plan)
        return await self._record_and_run(job, doc)

    async def _fetch(self, job: Fetch) -> dict[str, Any]:
        doc = self._new_doc(job.bake_id, job.url, job.callback_url)
        doc.update(stage="fetching", callback_style=job.callback_style.value,
                   refs=dict(job.refs or {}), result_base=job.result_base)
        return await self._record_and_run(job, doc)

    async def _record_and_run(self, job: Enqueue | Fetch, doc: dict[str, Any]) -> dict[str, Any]:
        # Taken even if its reservation expired meanwhile: the work is done, the slot is due.
        self.reserved.pop(job.bake_id, None)
        try:
            await self.store.put_doc(KIND, job.bake_id, doc)
            for name, value in (doc.get("refs") or {}).items():
                ref = f"{name}:{value}"
                await self.store.put_doc(REFS, ref, {"id": ref, "bake_id": job.bake_id})
        except BaseException:
            metrics.BAKES_ACTIVE.set(self._active())
            raise
        task = self.spawn_task(self._run(job, doc), name=f"bake {job.bake_id}")
        if task is not None:  # None: stopping, and the next start fails it as interrupted
            self.tasks[job.bake_id] = task
        metrics.BAKES_ACTIVE.set(self._active())
        return doc

    async def _fetched(self, job: Fetch, doc: dict[str, Any]) -> Enqueue:
        """Fetch, check and plan a Fetch's archive (no encoder slot held meanwhile)."""
        bakes = self.settings.bakes
        await asyncio.to_thread(job.work_dir.mkdir, parents=True, exist_ok=True)
        archive = job.work_dir / "archive.bin"
        await fetch_archive(job.url, archive, settings=bakes, pieces=self.settings.pieces)
        doc["stage"] = "checking"
        await self._save(doc)
        tape = await check_archive(archive, job.work_dir / "tape", bakes)
        plan = plan_bake(tape, job.scale, bakes)
        describe(doc, tape, plan)
        doc["stage"] = "queued"
        await self._save(doc)
        return Enqueue(job.bake_id, job.work_dir, tape, plan, job.url, job.callback_url)

    async def _run(self, job: Enqueue | Fetch, doc: dict[str, Any]) -> None:
        assert self.limiter is not None
        try:
            if isinstance(job, Fetch):
                job = await self._fetched(job, doc)
            async with self.limiter.slot():
                self.running.add(job.bake_id)
                move(doc, BakeState.RUNNING, started_at=time.time(), stage="encoding")
                await self._save(doc)
                doc.update(await self._bake(job, doc))
            # After the slot is given back: a cancel landing in its release fails the bake
            # (RUNNING -> FAILED), never a COMPLETE one.
            move(doc, BakeState.COMPLETE, stage=BakeState.COMPLETE.value)
        except asyncio.CancelledError:
            move(doc, BakeState.FAILED, stage=BakeState.FAILED.value,
                  error="interrupted: oven stopped before the bake finished")
            # The webhooks actor stops right after this one and may abandon the callback:
            # the next start sends it unless a delivery of it is on record.
            doc["notify_on_start"] = bool(doc.get("callback_url"))
            self._tell_encoder(CancelEncode(job.bake_id))
            raise
        except Exception as exc:
            move(doc, BakeState.FAILED, stage=BakeState.FAILED.value, error=reason(exc))
            log.info("bake %s failed: %s", job.bake_id, doc["error"], extra={"bake": job.bake_id})
        finally:
            doc["finished_at"] = time.time()
            self.running.discard(job.bake_id)
            self.tasks.pop(job.bake_id, None)
            metrics.BAKES_ACTIVE.set(self._active())
            metrics.BAKES.labels(outcome=doc["state"]).inc()
            # Thousands of frames to unlink: off this loop, which answers the HTTP edge.
            await asyncio.to_thread(shutil.rmtree, job.work_dir, ignore_errors=True)
            await self._save(doc)
            self._notify(doc)

    async def _bake(self, job: Enqueue, doc: dict[str, Any]) -> dict[str, Any]:
        tape, plan, bake_id = job.tape, job.plan, job.bake_id
        out = job.work_dir / "out"
        out.mkdir(parents=True, exist_ok=True)
        settings = self.settings
        request = BakeEncodeRequest(
            frames_dir=tape.dir, first_index=tape.first_index, frames=tape.frames,
            fps=plan.fps, soundtrack=tape.soundtrack, out_path=out / "tape.mp4",
            scale=plan.scale, audio_bitrate=settings.bakes.audio_bitrate,
            timeout_s=settings.bakes.encode_timeout_s)
        # The ask covers the wait for an encoder slot (grabs share them) plus the run itself.
        waiting = math.ceil(settings.bakes.max_active / settings.encoder.effective_concurrency())
        timeout = settings.bakes.encode_timeout_s * (1 + waiting) + 30
        video = await self._encode(EncodeBake(bake_id, request), timeout=timeout)
        thumb_request = EncodeRequest(
            frames=[tape.frame_path(tape.frames // 2)], fps=1, format=Format.JPEG,
            out_path=out / "thumb.jpg", upscale=plan.scale)
        thumb = await self._encode(Encode(f"{bake_id}-thumb", thumb_request),
                                   timeout=settings.encoder.timeout_s * (1 + waiting) + 30)
        doc["stage"] = "uploading"
        await self._save(doc)
        stored_video = await self._upload(bake_id, "tape.mp4", video.path, video.content_type)
        stored_thumb = await self._upload(bake_id, "thumb.jpg", thumb.path, thumb.content_type)
        return {"url": result_url(stored_video.key, stored_video.url),
                "thumbnail_url": result_url(stored_thumb.key, stored_thumb.url),
                "size": stored_video.size, "storage_key": stored_video.key,
                "thumbnail_key": stored_thumb.key, "encode_s": round(video.seconds, 3)}

    async def _encode(self, message: Encode | EncodeBake, *, timeout: float) -> Any:
        try:
            return await ask_async(self.ctx.lookup.ref("encoder"), message, timeout=timeout)
        except AskTimeout:
            # Our wait is over; the encoder must not go on to run (or keep running) it.
            self._tell_encoder(CancelEncode(message.job_id))
            raise

    async def _upload(self, bake_id: str, name: str, path: Path, content_type: str) -> Any:
        return await ask_async(self.ctx.lookup.ref("uploader"),
                               Upload(bake_id, f"bakes/{bake_id}/{name}", path, content_type),
                               timeout=120)

    def _tell_encoder(self, message: Any) -> None:
        try:
            self.ctx.lookup.ref("encoder").tell(message)
        except (ActorUnavailable, MailboxFull, pykka.ActorDeadError) as exc:
            log.warning("could not tell the encoder %s: %s", type(message).__name__, exc)

    async def _save(self, doc: dict[str, Any]) -> None:
        try:
            await self.store.put_doc(KIND, doc["id"], doc)
        except _PEER_ERRORS as exc:
            log.warning("bake %s: could not record state %s: %s", doc["id"], doc["state"], exc,
                        extra={"bake": doc["id"]})

    def _notify(self, doc: dict[str, Any]) -> None:
        url = doc.get("callback_url")
        if not url:
            return
        secret = self.settings.compat.bakes.callback_secret
        payload = callback_payload(doc, secret=None if secret is None
                                   else secret.get_secret_value())
        try:
            from oven.actors.webhooks import Deliver

            self.ctx.lookup.ref("webhooks").tell(
                Deliver(kind="bake", subject_id=doc["id"], url=url, payload=payload))
        except (ImportError, ActorUnavailable, MailboxFull, pykka.ActorDeadError) as exc:
            log.warning("bake %s: webhook not sent: %s", doc["id"], exc,
                        extra={"bake": doc["id"]})

    async def _keep(self) -> None:
        """Heartbeat, and fail the bakes nobody will finish: ours left by a previous run (once),
        and those of instances that stopped beating (every lease)."""
        cluster = self.settings.cluster
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        first = True
        while True:
            try:
                await self.store.put_doc(INSTANCES, self.instance,
                                         {"id": self.instance, "heartbeat_at": time.time()})
                if loop.time() >= next_sweep:
                    await self._fail_abandoned(own_too=first)
                    first = False
                    next_sweep = loop.time() + cluster.lease_s
            except _PEER_ERRORS as exc:
                log.warning("bakes: heartbeat or sweep of interrupted bakes failed: %s", exc)
            except Exception:
                # This task must outlive any one bad record: log it, try again next beat.
                log.exception("bakes: heartbeat or sweep of interrupted bakes failed")
            await asyncio.sleep(cluster.heartbeat_s)

    async def _delivered(self) -> set[str]:
        """Bakes whose callback a receiver took (the newest SWEEP_LIMIT deliveries)."""
        docs = await self.store.list_docs(DELIVERIES_KIND, limit=SWEEP_LIMIT)
        return {str(d.get("subject_id")) for d in docs
                if d.get("kind") == "bake" and d.get("state") == DeliveryState.DELIVERED}

    async def _fail_abandoned(self, *, own_too: bool) -> None:
        now = time.time()
        lease = self.settings.cluster.lease_s
        beats: dict[str, float] = {}
        delivered: set[str] | None = None
        for doc in await self.store.list_docs(KIND, limit=SWEEP_LIMIT):
            bake_id = doc.get("id")
            owner = doc.get("instance_id")
            own = owner is None or owner == self.instance  # records from before instances too
            if own_too and own and doc.get("notify_on_start"):
                if delivered is None:
                    delivered = await self._delivered()
                doc["notify_on_start"] = False
                await self._save(doc)
                if bake_id not in delivered:
                    self._notify(doc)
                continue
            if state_of(doc).is_final or bake_id in self.tasks:
                if own_too and own and bake_id not in self.tasks:
                    # A bake failed as oven stopped removes its work dir on the way out, but
                    # a stop that runs out of time (a loaded host, thousands of frames) leaves
                    # it half done, and nothing else would ever remove it.
                    left = work_root(self.settings) / str(bake_id)
                    if left.exists():
                        await asyncio.to_thread(shutil.rmtree, left, ignore_errors=True)
                continue
            if own:
                if not own_too:
                    continue
                error = "interrupted: oven restarted before the bake finished"
            else:
                assert owner is not None  # not our own record
                if owner not in beats:
                    beat = await self.store.get_doc(INSTANCES, owner)
                    beats[owner] = float((beat or {}).get("heartbeat_at") or 0)
                # A bake recorded a moment ago may come before its instance's first beat.
                last_seen = max(beats[owner], float(doc.get("created_at") or 0))
                if now - last_seen <= lease:
                    continue
                error = (f"interrupted: its instance {owner} is gone (no heartbeat for "
                         f"{now - last_seen:.0f} s)")
            move(doc, BakeState.FAILED, stage=BakeState.FAILED.value, finished_at=now,
                  error=error)
            await self._save(doc)
            # Its caller still hears how it ended: nobody else will tell it.
            self._notify(doc)
            if own:
                await asyncio.to_thread(shutil.rmtree, work_root(self.settings) / str(bake_id),
                                        ignore_errors=True)

"""One grab's path through oven's actors: validate -> target -> submit -> wait -> locate.

The HTTP routes (grabs, icons, previews, showcase) and `oven grab` each take these steps; this
is the one place they are taken, so a grab means the same at every entrance. Refusals are
ApiErrors: the HTTP edge answers them as they are, the CLI prints their message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from pydantic import ValidationError

from oven.actors.grab_queue import (
    Cancel,
    GetJob,
    GrabView,
    JobElsewhere,
    LocateResult,
    Submit,
    Submitted,
    WaitFor,
)
from oven.actors.uploader import Location
from oven.config import Settings
from oven.grabs import (
    CodeTemplateUnset,
    GrabRequest,
    GrabResult,
    TargetRefused,
    UnknownPiece,
    piece_target,
    url_target,
)
from oven.http._errors import ApiError, validation_message
from oven.store import StoreUnavailable
from oven.system import ActorSystem
from oven.webhooks import check_callback_url

CHUNK = 256 * 1024  # bytes read from a stored result per step


class LimitsExceeded(ApiError):
    """The grab is well-formed but over the configured [limits]; `violations` lists each."""

    def __init__(self, violations: list[tuple[str, str]]) -> None:
        field, rule = violations[0]
        super().__init__(422, f"{field}: {rule}", extra={"details": [
            {"field": f, "message": m} for f, m in violations]})
        self.violations = violations


def parse_grab(data: Any) -> GrabRequest:
    try:
        return GrabRequest.model_validate(data)
    except ValidationError as exc:
        message, details = validation_message(exc)
        raise ApiError(422, message, extra={"details": details}) from None


async def validated(settings: Settings, data: Any) -> tuple[GrabRequest, str]:
    """Schema, configured limits and target rules: each failure a 4xx naming the field.

    Needs only the settings: `oven grab` refuses bad input before it starts any actor.
    """
    grab = parse_grab(data)
    violations = grab.limit_violations(settings.limits)
    if violations:
        raise LimitsExceeded(violations)
    try:
        if grab.piece is not None:
            target = piece_target(grab.piece, settings.pieces, density=grab.density)
        else:
            target = await url_target(str(grab.url), settings.pieces)
    except UnknownPiece as exc:
        raise ApiError(404, str(exc), code="unknown_piece") from None
    except CodeTemplateUnset as exc:
        # Not a refused origin: this service has no URL for codes, which its config can give.
        raise ApiError(422, str(exc), code="code_template_unset") from None
    except TargetRefused as exc:
        raise ApiError(403, str(exc), code="target_refused") from None
    if grab.callback_url is not None:  # CallbackRefused answers 422 (see http._errors)
        # The URL as the webhook client will read it is the one kept and POSTed to.
        grab.callback_url = check_callback_url(grab.callback_url, settings.webhooks)
    return grab, target


def _view(answer: dict[str, Any]) -> GrabView:
    # The queue answers a view's JSON (record_view); a cache hit's also says "cached", which
    # Submitted.cached carries.
    return GrabView.model_validate({k: v for k, v in answer.items() if k != "cached"})


class Accepted:
    """A submission's answer: the job's view, and how it was taken."""

    def __init__(self, submitted: Submitted) -> None:
        self.view = _view(submitted.job)
        self.cached = submitted.cached
        self.attached = submitted.attached
        self.cancel_token = submitted.cancel_token


class GrabClient:
    """Asks the GrabQueue on a grab's behalf, and answers typed views."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system

    async def submit(self, grab: GrabRequest, target: str) -> Accepted:
        # QueueFull (429) and PieceFrozen (409) are Refusals: http._errors answers them.
        try:
            submitted: Submitted = await self.system.ask_async("grab_queue", Submit(grab, target))
        except StoreUnavailable as exc:
            # Nothing is admitted that the store could not record; running jobs carry on.
            raise ApiError(503, "the job store is unreachable, so no new work is accepted: "
                           f"{exc}", code="store_unavailable", retry_after_s=5) from None
        return Accepted(submitted)

    async def get(self, job_id: str) -> GrabView | None:
        answer = await self.system.ask_async("grab_queue", GetJob(job_id))
        return None if answer is None else _view(answer)

    async def job(self, job_id: str) -> GrabView:
        view = await self.get(job_id)
        if view is None:
            raise ApiError(404, f"no grab with id {job_id!r}")
        return view

    async def wait(self, view: GrabView, timeout_s: float) -> GrabView:
        """The view once final, or as it stands after timeout_s."""
        if view.state.is_final or view.id is None:
            return view
        answer = await self.system.ask_async("grab_queue", WaitFor(view.id, timeout_s),
                                             timeout=timeout_s + 10)
        if answer is None:
            raise ApiError(404, f"no grab with id {view.id!r}")
        return _view(answer)

    async def cancel(self, job_id: str) -> GrabView:
        try:
            answer = await self.system.ask_async("grab_queue", Cancel(job_id), timeout=30)
        except JobElsewhere as exc:
            raise ApiError(409, str(exc), code="running_elsewhere") from None
        if answer is None:
            raise ApiError(404, f"no grab with id {job_id!r}")
        return _view(answer)

    async def locate(self, result: GrabResult) -> Location:
        """Where a stored result can be read: a local path, a URL, or neither."""
        if result.storage_key is None:
            return Location(path=None, url=None)
        return await self.locate_key(result.storage_key)

    async def locate_key(self, key: str) -> Location:
        location: Location = await self.system.ask_async("grab_queue", LocateResult(key))
        return location

    async def chunks(self, result: GrabResult, *,
                     timeout_s: float = 30) -> AsyncGenerator[bytes, None]:
        """A stored result's bytes in chunks: read from local storage, or fetched from its URL."""
        location = await self.locate(result)
        if location.path is not None:
            with open(location.path, "rb") as source:
                while chunk := await asyncio.to_thread(source.read, CHUNK):
                    yield chunk
            return
        if location.url is None:
            raise RuntimeError(f"stored result {result.storage_key!r} has no path or URL")
        async with httpx.AsyncClient(timeout=timeout_s) as client, \
                client.stream("GET", location.url) as response:
            response.raise_for_status()
            async for chunk in response.aiter_bytes(CHUNK):
                yield chunk

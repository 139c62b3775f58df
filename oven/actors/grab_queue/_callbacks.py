"""A grab's callback URL: told to the Webhooks actor once the job is final (or cached)."""

from __future__ import annotations

import logging
from typing import Any

from oven.actors.grab_queue._lease import Watchers
from oven.actors.store import StoreClient
from oven.actors.webhooks import Deliver
from oven.config import Settings
from oven.grabs import result_url
from oven.jobs import JobState
from oven.store import JobRecord

log = logging.getLogger(__name__)


class Callbacks:
    def __init__(self, lookup: Any, store: StoreClient, watchers: Watchers,
                 settings: Settings) -> None:
        self.lookup = lookup
        self.store = store
        self.watchers = watchers
        self.settings = settings

    def send(self, url: str, job_id: str | None, state: JobState, result: dict[str, Any],
             error: str | None) -> None:
        key = result.get("storage_key")
        where = result_url(key, result.get("url")) if key else result.get("url")
        payload = {"id": job_id, "state": state.value, "url": where, "thumbnail_url": None,
                   "error": error}
        try:
            self.lookup.ref("webhooks").tell(
                Deliver(kind="grab", subject_id=job_id or "cached", url=url, payload=payload))
        except Exception as exc:  # delivery never blocks or breaks the job
            log.warning("job=%s: webhook to %s not queued: %s", job_id, url, exc)

    def final(self, record: JobRecord) -> None:
        """The callback of a job that reached a final state here, if it asked for one."""
        callback = record.request.get("callback_url")
        if callback:
            self.send(callback, record.id, record.state, record.result or {}, record.error)

    async def when_final(self, job_id: str, url: str) -> None:
        """A callback given by a request that attached to a running job (held here only)."""
        deadline = self.settings.queue.deadline_s + self.settings.cluster.lease_s
        await self.watchers.wait(job_id, deadline)
        record = await self.store.get_job(job_id)
        if record is not None and record.state.is_final:
            self.send(url, job_id, record.state, record.result or {}, record.error)

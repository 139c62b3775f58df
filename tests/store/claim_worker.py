"""Run as a separate process: race the test for queued jobs in a shared SQLite file.

argv: <db path> <owner> <job id>...; prints "ready", waits for a line on stdin, then tries to
claim every job (queued -> running, expect queued) and prints the ids it won as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from oven.jobs import JobState
from oven.store import StaleState, StoreSettings, make_store


async def main(db: Path, owner: str, job_ids: list[str]) -> None:
    store = make_store(StoreSettings(sqlite_path=db, timeout_s=10), db.parent)
    await store.start()
    try:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        won = []
        for job_id in job_ids:
            try:
                await store.transition(
                    job_id, JobState.RUNNING, expect=JobState.QUEUED, owner=owner
                )
            except StaleState:
                continue
            won.append(job_id)
        print(json.dumps(won), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))

"""oven's actors, one room each; the runtime they stand on is `oven.actors.runtime`.

- `grab_queue`: GrabQueue: admission, single-flight, cache, leases, running and settling jobs.
- `browser_pool`: BrowserPool: one Chromium, its pages, their captures and memory ceilings.
- `baker`: Baker: bundles (bakes) admitted, fetched, unpacked within limits and uploaded.
- `encoder`: Encoder: ffmpeg slots that turn captured frames into files.
- `uploader`: Uploader: results written to the storage backend (local disk or S3).
- `webhooks`: Webhooks: callback deliveries with retries.
- `memory_watch`: MemoryWatch: the memory of the whole process tree against the budget.
- `pty_session`: PtySession: one terminal session, its child process and its streams.
- `store`: StoreActor: the metadata store (SQLite or MongoDB) behind one thread, and its client.
"""

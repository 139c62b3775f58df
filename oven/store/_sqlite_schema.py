"""The SQLite store's schema and how job records map to rows."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from oven.store._records import JobRecord, QueuedJobs

SCHEMA_VERSION = 3  # 2: grabs.claim; 3: grabs.target_url
SCHEMA = """
CREATE TABLE IF NOT EXISTS grabs (
    id TEXT PRIMARY KEY,
    capture_key TEXT NOT NULL,
    state TEXT NOT NULL,
    lane TEXT NOT NULL,
    piece TEXT,
    request TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    deadline_at REAL NOT NULL,
    stage TEXT,
    history TEXT NOT NULL,
    timings TEXT NOT NULL,
    result TEXT,
    error TEXT,
    owner TEXT,
    lease_expires_at REAL,
    claim TEXT,
    rev INTEGER NOT NULL DEFAULT 0,
    target_url TEXT
);
CREATE INDEX IF NOT EXISTS grabs_capture_key_state ON grabs (capture_key, state);
CREATE INDEX IF NOT EXISTS grabs_state_created_at ON grabs (state, created_at);
CREATE INDEX IF NOT EXISTS grabs_created_at ON grabs (created_at);
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cache_expires_at ON cache (expires_at);
CREATE TABLE IF NOT EXISTS frozen (
    piece TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    last_reason TEXT,
    last_failure_at REAL,
    frozen_until REAL,
    reason TEXT,
    frozen_at REAL
);
CREATE INDEX IF NOT EXISTS frozen_frozen_until ON frozen (frozen_until);
CREATE TABLE IF NOT EXISTS flights (
    capture_key TEXT PRIMARY KEY,
    job_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS grabs_state_lane_created_at ON grabs (state, lane, created_at);
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS docs_kind_created_at ON docs (kind, created_at);
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    heartbeat_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_heartbeat_at ON instances (heartbeat_at);
"""

JOB_COLUMNS = tuple(JobRecord.model_fields)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring a file of an older schema (or a new one) to SCHEMA_VERSION, in one write
    transaction so two processes opening the file together apply it once."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(grabs)")}
        if "claim" not in columns:  # schema 1 had no claim tokens
            conn.execute("ALTER TABLE grabs ADD COLUMN claim TEXT")
        if "target_url" not in columns:  # schema 2 kept it in the request (JobRecord reads it)
            conn.execute("ALTER TABLE grabs ADD COLUMN target_url TEXT")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
_JSON_COLUMNS = frozenset({"request", "history", "timings", "result"})


def to_row(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: json.dumps(v) if k in _JSON_COLUMNS and v is not None else v for k, v in values.items()
    }


def to_job(row: sqlite3.Row) -> JobRecord:
    data = {k: row[k] for k in JOB_COLUMNS}
    for k in _JSON_COLUMNS:
        if data[k] is not None:
            data[k] = json.loads(data[k])
    return JobRecord.model_validate(data)


def read_queued(conn: sqlite3.Connection, limit: int, known: dict[str, int]) -> QueuedJobs:
    """QueuedJobs from two reads: ids and revisions, then the rows the caller lacks (with the
    revision they were read at). A job that leaves the queue between the two is left out."""
    revisions: dict[str, int] = dict(conn.execute(
        "SELECT id, rev FROM grabs WHERE state = 'queued' ORDER BY created_at, id LIMIT ?",
        (limit,)))
    wanted = [i for i, rev in revisions.items() if known.get(i) != rev]
    records: dict[str, JobRecord] = {}
    for start in range(0, len(wanted), 500):  # under SQLite's bound on host parameters
        chunk = wanted[start:start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
                f"SELECT * FROM grabs WHERE state = 'queued' AND id IN ({marks})", chunk):
            records[row["id"]] = to_job(row)
            revisions[row["id"]] = row["rev"]
    for job_id in wanted:
        if job_id not in records:
            del revisions[job_id]
    return QueuedJobs(revisions=revisions, records=records)

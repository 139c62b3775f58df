"""Every Prometheus series oven exports, declared once so names and labels stay consistent."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MAILBOX_DEPTH = Gauge("oven_mailbox_depth", "Messages waiting in an actor's mailbox", ["actor"])
MAILBOX_CAPACITY = Gauge(
    "oven_mailbox_capacity", "Capacity of an actor's mailbox (0 = unbounded)", ["actor"]
)
MAILBOX_REJECTED = Counter(
    "oven_mailbox_rejected_total", "Messages refused because the mailbox was full", ["actor"]
)
ACTOR_RESTARTS = Counter(
    "oven_actor_restarts_total", "Actor restarts by the supervisor", ["actor", "reason"]
)
ACTOR_UP = Gauge(
    "oven_actor_up", "1 when the actor is running and answered its last ping", ["actor"]
)
SUPERVISOR_ESCALATIONS = Counter(
    "oven_supervisor_escalations_total", "Restart budgets exceeded", ["supervisor"]
)
CONFIG_RELOADS = Counter("oven_config_reloads_total", "Config reloads", ["outcome"])
HEALTHY = Gauge("oven_healthy", "1 while the supervision tree is healthy")

# Capture pipeline
QUEUE_DEPTH = Gauge("oven_queue_depth", "Grab jobs waiting, by lane", ["lane"])
GRABS = Counter("oven_grabs_total", "Finished grabs by format and outcome", ["format", "outcome"])
STAGE_SECONDS = Histogram(
    "oven_stage_seconds",
    "Time spent per pipeline stage",
    ["stage"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
PAGES_IN_USE = Gauge("oven_pages_in_use", "Browser page slots busy")
POOL_SIZE = Gauge("oven_pool_size", "Browser page slots configured")
BROWSER_RESTARTS = Counter("oven_browser_restarts_total", "Browser recycles by reason", ["reason"])
JOBS_SINCE_RESTART = Gauge("oven_browser_jobs_since_restart", "Jobs since the browser started")
ENCODER_RUNNING = Gauge("oven_encoder_running", "ffmpeg processes running")
CACHE = Counter("oven_cache_total", "Result cache lookups", ["outcome"])
UPLOADS = Counter("oven_uploads_total", "Upload attempts by outcome", ["outcome"])
UPLOAD_PENDING = Gauge("oven_upload_pending", "Jobs whose result waits for storage to come back")

# Memory (MemoryWatch)
MEMORY_BYTES = Gauge(
    "oven_memory_bytes", "Memory of oven's process tree by component", ["component", "measure"]
)
MEMORY_BUDGET = Gauge("oven_memory_budget_bytes", "The memory budget the tree is kept under")
MEMORY_PRESSURE = Gauge(
    "oven_memory_pressure_state", "0 normal, 1 above the soft watermark, 2 above the hard one"
)
CGROUP_MEMORY = Gauge("oven_cgroup_memory_bytes", "cgroup memory figures by file", ["file"])
MEMORY_ACTIONS = Counter(
    "oven_memory_actions_total", "Actions taken on memory pressure", ["action"]
)
MEMORY_SAMPLER_SECONDS = Counter(
    "oven_memory_sampler_seconds_total", "CPU seconds spent sampling memory"
)

# PTY sessions
PTY_SESSIONS = Gauge("oven_pty_sessions", "Terminal sessions by state", ["state"])
PTY_BYTES = Counter("oven_pty_bytes_total", "Bytes through terminal sessions", ["direction"])
PTY_PAUSED_SECONDS = Counter(
    "oven_pty_paused_seconds_total", "Time sessions spent paused for a slow controlling client"
)
PTY_BACKPRESSURE = Counter(
    "oven_pty_backpressure_events_total", "Times a session's input buffer was full"
)
PTY_CLIENTS = Gauge("oven_pty_clients", "Clients attached to terminal sessions")
PTY_RESYNCS = Counter("oven_pty_resyncs_total", "Observers that fell off a session's ring")
PTY_STALLED = Counter(
    "oven_pty_stalled_disconnects_total", "Observers detached for making no progress"
)

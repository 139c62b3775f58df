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
CAPTURE_BLOCKED = Counter(
    "oven_capture_blocked_requests_total",
    "Requests of raw-URL captures blocked inside the page (private address, scheme, ...)",
    ["reason"],
)
CANVAS_FRAMES = Counter(
    "oven_capture_canvas_frames_total",
    "Captures asked for canvas frames, by outcome: canvas (taken), probe (the canvas is not "
    "the whole picture), check (its first frame differed from the screenshot), midway (it "
    "stopped giving frames); all but canvas took screenshots",
    ["outcome"],
)
CANVAS_PIXEL_READS = Counter(
    "oven_capture_canvas_pixel_reads_total",
    "Canvas WebP frames whose pixels were read to find the box that changed, by how: "
    "video_frame (into two buffers kept for the capture) or image_data (a new buffer a frame, "
    "freed only by a full collection: only where VideoFrame cannot read the canvas)",
    ["how"],
)
RATE_LIMITED = Counter(
    "oven_rate_limited_total", "Requests refused by the per-client rate limit", ["rule"]
)
UPLOAD_PENDING = Gauge("oven_upload_pending", "Jobs whose result waits for storage to come back")

# Shared queue (leases; the same with one instance or several)
INSTANCE_INFO = Gauge("oven_instance_info", "1, labelled with this instance's id", ["instance_id"])
LEASE_CLAIMS = Counter("oven_lease_claims_total", "Jobs claimed from the store", ["instance_id"])
LEASES_EXPIRED = Counter(
    "oven_leases_expired_total", "Jobs of a silent instance requeued or failed by this one",
    ["instance_id"],
)
LEASES_LOST = Counter(
    "oven_leases_lost_total", "Jobs this instance stopped because their lease passed on",
    ["instance_id"],
)
LEASE_OP_SECONDS = Histogram(
    "oven_lease_op_seconds", "Time of lease operations on the store", ["op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)

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

# Showcase (app-store screenshots, OG images)
OG_RENDERS = Counter(
    "oven_og_renders_total", "OG image renders by layout and outcome (ok, failed, cancelled)",
    ["layout", "outcome"],
)
OG_SERVED = Counter(
    "oven_og_served_total",
    "OG images answered by layout and freshness (fresh, stale, waited)", ["layout", "freshness"],
)

# Webhooks
WEBHOOK_DELIVERIES = Counter(
    "oven_webhook_deliveries_total",
    "Settled webhook deliveries (delivered, failed, dropped over max_pending, abandoned at stop)",
    ["outcome"],
)
WEBHOOK_ATTEMPTS = Counter(
    "oven_webhook_attempts_total",
    "Webhook POST attempts by result (2xx..5xx, timeout, connection_error, refused)",
    ["result"],
)

# Tape baking
BAKES = Counter(
    "oven_bakes_total", "Bakes by outcome (complete, failed, refused at the door)", ["outcome"]
)
BAKES_ACTIVE = Gauge("oven_bakes_active", "Bakes queued or running")

# Live dashboard
DASHBOARD_CLIENTS = Gauge("oven_dashboard_clients", "Browsers connected to the dashboard stream")
DASHBOARD_DELTAS_DROPPED = Counter(
    "oven_dashboard_deltas_dropped_total",
    "Dashboard states a slow client skipped (merged into its next delta, never queued)",
)
DASHBOARD_STALLED = Counter(
    "oven_dashboard_stalled_disconnects_total",
    "Dashboard clients disconnected because a send did not finish within its timeout",
)

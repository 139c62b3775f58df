"""The configuration schema: one section per actor, typed and range-checked.

The defaults here are the embedded defaults; config/oven.toml spells them out (a test keeps the
two identical). Sections owned by an engine live next to it (browser, encoder, storage, store).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_core.core_schema import ValidatorFunctionWrapHandler

from oven.bakes import BakeSettings
from oven.capture import BrowserSettings
from oven.config import CompatSettings, EdgeSettings
from oven.encode import EncoderSettings
from oven.grabs import ClusterSettings, LimitsSettings, PiecesSettings, QueueSettings
from oven.memory import MemorySettings, pages_for
from oven.pty import PtySettings
from oven.showcase import ShowcaseSettings
from oven.storage import StorageSettings
from oven.store import StoreSettings
from oven.webhooks import WebhookSettings

_STRICT = ConfigDict(extra="forbid")
log = logging.getLogger(__name__)


class ServerSettings(BaseModel):
    model_config = _STRICT

    host: str = Field("127.0.0.1", description="Address the HTTP server binds.")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one).")
    data_dir: Path = Field(Path("var"), description="Where relative data paths are resolved.")
    admin_token: SecretStr | None = Field(
        None, description="Bearer token for /admin routes; admin routes are refused when unset."
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics requires this bearer token."
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, le=1 << 30, description="Largest request body accepted."
    )
    fault_injection: bool = Field(
        False, description="Enable POST /admin/faults/{actor}/crash (for resilience tests)."
    )
    shutdown_grace_s: float = Field(
        10.0, ge=0, le=300, description="Time running work gets to finish on SIGTERM."
    )


class SupervisorSettings(BaseModel):
    model_config = _STRICT

    intensity: int = Field(5, ge=0, le=1000, description="Restarts allowed within period_s.")
    period_s: float = Field(60.0, gt=0, le=86400, description="Sliding window for intensity.")
    backoff_initial_s: float = Field(0.1, ge=0, le=60, description="First restart delay.")
    backoff_max_s: float = Field(5.0, ge=0, le=600, description="Longest restart delay.")
    jitter: float = Field(0.2, ge=0, le=1, description="Random spread of restart delays (±).")
    ping_interval_s: float = Field(2.0, gt=0, le=600, description="Liveness ping interval.")
    ping_timeout_s: float = Field(
        10.0, gt=0, le=3600, description="An actor silent this long is hung and restarted."
    )
    ask_timeout_s: float = Field(10.0, gt=0, le=600, description="Default timeout of an ask.")


class MailboxSettings(BaseModel):
    """Mailbox capacities (messages) per actor: a full mailbox answers 429, never waits."""

    model_config = _STRICT

    store: int = Field(2000, ge=1, le=1_000_000)
    uploader: int = Field(500, ge=1, le=1_000_000)
    encoder: int = Field(500, ge=1, le=1_000_000)
    browser: int = Field(500, ge=1, le=1_000_000)
    grab_queue: int = Field(1000, ge=1, le=1_000_000)
    memory: int = Field(100, ge=1, le=1_000_000)


class LogSettings(BaseModel):
    model_config = _STRICT

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO")


class Settings(BaseModel):
    model_config = _STRICT

    server: ServerSettings = Field(default_factory=ServerSettings)
    supervisor: SupervisorSettings = Field(default_factory=SupervisorSettings)
    mailboxes: MailboxSettings = Field(default_factory=MailboxSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    browser: BrowserSettings = Field(default_factory=BrowserSettings)
    encoder: EncoderSettings = Field(default_factory=EncoderSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    pieces: PiecesSettings = Field(default_factory=PiecesSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    pty: PtySettings = Field(default_factory=PtySettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    bakes: BakeSettings = Field(default_factory=BakeSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    showcase: ShowcaseSettings = Field(default_factory=ShowcaseSettings)
    compat: CompatSettings = Field(default_factory=CompatSettings)

    @model_validator(mode="wrap")
    @classmethod
    def _auto_pages(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Settings:
        """`browser.pages = "auto"`: the pages this host's memory budget holds, chosen here so
        every reader of browser.pages sees a number (and a reload chooses again)."""
        browser = data.get("browser") if isinstance(data, dict) else None
        if not (isinstance(browser, dict) and browser.get("pages") == "auto"):
            return handler(data)
        settings: Settings = handler({**data, "browser": {**browser, "pages": 1}})
        settings.browser.pages, how = pages_for(settings.memory)
        log.info('browser.pages = "auto": %s', how)
        return settings

    def resolve(self, path: Path) -> Path:
        """A data path as used at run time: relative ones live under server.data_dir."""
        return path if path.is_absolute() else self.server.data_dir / path


# Keys that take effect on reload (SIGHUP, POST /admin/reload) without a restart. A trailing
# ".*" covers a whole section. Anything else changed by a reload is reported as needing a restart.
LIVE_KEYS = (
    "supervisor.*",
    "mailboxes.*",
    "log.level",
    "browser.pages",
    "browser.restart_after",
    "browser.ready_timeout_s",
    "browser.navigation_timeout_s",
    "browser.health_interval_s",
    "browser.health_timeout_s",
    "encoder.concurrency",
    "encoder.timeout_s",
    "server.shutdown_grace_s",
    "queue.*",
    "limits.*",
    "memory.*",
    "pieces.allowed_origins",
    "pieces.allow_private",
    "webhooks.*",
    "showcase.*",
    "edge.trust_forwarded",
    "edge.rate_limit_per_s",
    "edge.rate_limit_burst",
    "edge.rate_limited_paths",
    "cluster.lease_s",
    "cluster.heartbeat_s",
    "cluster.poll_s",
    # Read per request or per render by the old service's routes (oven.compat).
    "compat.grabs.*",
    "compat.bundles.*",
    "compat.app_screenshots.*",
    "compat.og.*",
)


def is_live(key: str) -> bool:
    return any(key == k or (k.endswith(".*") and key.startswith(k[:-1])) for k in LIVE_KEYS)

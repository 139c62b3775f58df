"""Logging policy, written down once.

ERROR: an unhandled failure. WARNING: degraded or unexpected (a restart, a retry). INFO: lifecycle
and handled errors returned to callers. DEBUG: detail. Actor threads are named after their actor,
and the thread name is in every line, so `grep browser` follows one actor; job lines carry
`job=<id>` so `grep job=...` follows one job.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s [%(threadName)s] %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("oven").setLevel(level)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    logging.getLogger("pykka").setLevel(logging.WARNING)

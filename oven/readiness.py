"""A board where actors post why new work cannot start; /ready reads it without asking them."""

from __future__ import annotations

import threading


class ReadinessBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reasons: dict[str, str] = {}

    def set(self, reason: str, detail: str) -> None:
        with self._lock:
            self._reasons[reason] = detail

    def clear(self, reason: str) -> None:
        with self._lock:
            self._reasons.pop(reason, None)

    def reasons(self) -> dict[str, str]:
        with self._lock:
            return dict(self._reasons)

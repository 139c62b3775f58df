"""What a bake's callback_url is POSTed when the bake is final, in the style its caller asked.

"oven" is oven's own body (POST /bakes). "old" is the old service's tape-bake callback, which
its receivers cannot change a line of (README "Migrating from the old service"): the caller's
`mongoId`, `slug` and `code`, the shared `secret`, and either `mp4Url` and `thumbnailUrl`
(absolute: the receiver downloads them) or, for a failed bake, `error`.
"""

from __future__ import annotations

import enum
from typing import Any
from urllib.parse import urljoin

from oven.bakes._state import BakeState

OLD_REFS = ("mongoId", "slug", "code")


class CallbackStyle(enum.StrEnum):
    OVEN = "oven"
    OLD = "old"


def callback_payload(doc: dict[str, Any], *, secret: str | None) -> dict[str, Any]:
    """The JSON body for a final bake record `doc` (`secret` is sent by the "old" style only)."""
    if doc.get("callback_style") != CallbackStyle.OLD:
        return {k: doc.get(k) for k in ("id", "state", "url", "thumbnail_url", "error")}
    refs = doc.get("refs") or {}
    body: dict[str, Any] = {k: refs.get(k) for k in OLD_REFS}
    body["secret"] = secret
    if doc.get("state") == BakeState.COMPLETE and doc.get("url"):
        base = doc.get("result_base") or ""
        body["mp4Url"] = urljoin(base, doc["url"])
        body["thumbnailUrl"] = urljoin(base, doc["thumbnail_url"] or "")
    else:
        body["error"] = doc.get("error") or f"bake {doc.get('state')}"
    return body

"""Grab requests: schema, limits, capture keys and target rules."""

from oven.grabs._request import PIECE_NAME, GrabRequest, capture_key
from oven.grabs._result import RESULTS_PATH, GrabResult, result_url
from oven.grabs._settings import ClusterSettings, LimitsSettings, PiecesSettings, QueueSettings
from oven.grabs._targets import (
    CodeTemplateUnset,
    TargetRefused,
    UnknownPiece,
    WebUrl,
    is_private,
    origin_of,
    piece_target,
    read_web_url,
    url_target,
)
from oven.lanes import Lane

__all__ = [
    "PIECE_NAME",
    "RESULTS_PATH",
    "ClusterSettings",
    "CodeTemplateUnset",
    "GrabRequest",
    "GrabResult",
    "Lane",
    "LimitsSettings",
    "PiecesSettings",
    "QueueSettings",
    "TargetRefused",
    "UnknownPiece",
    "WebUrl",
    "capture_key",
    "is_private",
    "origin_of",
    "piece_target",
    "read_web_url",
    "result_url",
    "url_target",
]

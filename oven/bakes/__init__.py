"""Tape baking: a streamed archive of PNG frames (+ soundtrack, timing) becomes an MP4."""

from oven.bakes._archive import Tape, read_timing, unpack, wav_seconds
from oven.bakes._callback import OLD_REFS, CallbackStyle, callback_payload
from oven.bakes._check import check_archive
from oven.bakes._errors import BakeRefused
from oven.bakes._fetch import fetch_archive
from oven.bakes._intake import BODY_SLACK, Intake, read_body
from oven.bakes._members import member_name
from oven.bakes._plan import BakePlan, choose_fps, plan_bake
from oven.bakes._settings import BakeSettings
from oven.bakes._state import BakeState, InvalidBakeTransition

__all__ = [
    "BODY_SLACK",
    "OLD_REFS",
    "BakePlan",
    "BakeRefused",
    "BakeSettings",
    "BakeState",
    "CallbackStyle",
    "Intake",
    "InvalidBakeTransition",
    "Tape",
    "callback_payload",
    "check_archive",
    "choose_fps",
    "fetch_archive",
    "member_name",
    "plan_bake",
    "read_body",
    "read_timing",
    "unpack",
    "wav_seconds",
]

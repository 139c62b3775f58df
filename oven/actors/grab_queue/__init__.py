"""GrabQueue: admission, single-flight, cache, leases, running and settling jobs."""

from oven.actors.grab_queue._actor import (
    GrabQueue,
)
from oven.actors.grab_queue._lease import (
    resolve_instance_id,
)
from oven.actors.grab_queue._messages import (
    Cancel,
    GetJob,
    GrabStatus,
    GrabView,
    InstancesSeen,
    JobElsewhere,
    LocateResult,
    PieceFrozen,
    QueueFull,
    QueueStatus,
    Submit,
    Submitted,
    WaitFor,
    cancel_token_matches,
    record_view,
)

__all__ = [
    "Cancel",
    "GetJob",
    "GrabQueue",
    "GrabStatus",
    "GrabView",
    "InstancesSeen",
    "JobElsewhere",
    "LocateResult",
    "PieceFrozen",
    "QueueFull",
    "QueueStatus",
    "Submit",
    "Submitted",
    "WaitFor",
    "cancel_token_matches",
    "record_view",
    "resolve_instance_id",
]

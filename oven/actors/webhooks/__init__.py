"""Webhooks: callback deliveries with retries."""

from oven.actors.webhooks._actor import (
    Deliver,
    Webhooks,
)

__all__ = [
    "Deliver",
    "Webhooks",
]

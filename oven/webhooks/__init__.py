"""Webhooks: results POSTed to a callback_url, HMAC-signed, retried with backoff."""

from oven.webhooks._delivery import (
    DELIVERIES_KIND,
    Attempt,
    Delivery,
    DeliveryState,
    backoff_s,
    deliver,
    encode_body,
)
from oven.webhooks._settings import WebhookSettings
from oven.webhooks._signing import sign, verify
from oven.webhooks._targets import CallbackRefused, check_callback_url, check_resolved

__all__ = [
    "DELIVERIES_KIND",
    "Attempt",
    "CallbackRefused",
    "Delivery",
    "DeliveryState",
    "WebhookSettings",
    "backoff_s",
    "check_callback_url",
    "check_resolved",
    "deliver",
    "encode_body",
    "sign",
    "verify",
]

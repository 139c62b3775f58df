"""Webhooks: results POSTed to a callback_url, HMAC-signed, retried with backoff."""

from oven.webhooks._settings import WebhookSettings

__all__ = ["WebhookSettings"]

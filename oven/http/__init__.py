"""HTTP: the Starlette app, JSON errors, auth, OpenAPI and the grab client `oven grab` shares."""

from oven.http._app import create_app
from oven.http._app_screenshots import ScreenshotState, app_screenshots_zip, screenshot_states
from oven.http._auth import holds_token, require_token
from oven.http._bakes import bake_routes, bake_view
from oven.http._dashboard import dashboard_routes
from oven.http._errors import ApiError, error_response, json_object, validation_message
from oven.http._grab_client import Accepted, GrabClient, LimitsExceeded, validated
from oven.http._grabs import GrabAccepted, grab_routes
from oven.http._openapi import operation
from oven.http._pty import pty_routes
from oven.http._pty_io import ObserverStream, closing_event
from oven.http._pty_page import pty_page_routes
from oven.http._roles import api_refusals, worker_ops_routes
from oven.http._showcase import og_renderer, render_og, seconds_to_midnight, showcase_routes

__all__ = [
    "Accepted",
    "ApiError",
    "GrabAccepted",
    "GrabClient",
    "LimitsExceeded",
    "ObserverStream",
    "ScreenshotState",
    "api_refusals",
    "app_screenshots_zip",
    "bake_routes",
    "bake_view",
    "closing_event",
    "create_app",
    "dashboard_routes",
    "error_response",
    "grab_routes",
    "holds_token",
    "json_object",
    "og_renderer",
    "operation",
    "pty_page_routes",
    "pty_routes",
    "render_og",
    "require_token",
    "screenshot_states",
    "seconds_to_midnight",
    "showcase_routes",
    "validated",
    "validation_message",
    "worker_ops_routes",
]

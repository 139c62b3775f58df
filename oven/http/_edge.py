"""What the HTTP edge lets in: CORS (off unless origins are configured) and a per-client rate
limit on job submission."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from oven import metrics
from oven.config import EdgeSettings
from oven.http._errors import error_response

EdgeSource = Callable[[], EdgeSettings]


class TokenBuckets:
    """One token bucket per client, in a table bounded by forgetting the least recently seen.

    Not the `limits` package: it has fixed and moving windows but no token bucket (a window of
    `burst` per `burst / rate` s makes an emptied client wait `burst` times longer than one
    token, and Retry-After says so), and its memory storage bounds clients by expiry only.

    Forgetting a client hands it a full bucket again, so the bound trades a little leniency
    toward a flood of distinct addresses for memory that cannot grow without limit.
    """

    def __init__(self, *, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, client: str, *, rate: float, burst: int) -> float:
        """0 when the client may go now, else the seconds until it may."""
        now = self._clock()
        tokens, at = self._buckets.pop(client, (float(burst), now))
        tokens = min(float(burst), tokens + (now - at) * rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / rate
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > self.capacity:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware: 429 with Retry-After once a client's bucket for limited routes is empty.

    Settings are read per request, so a config reload changes rate and routes at once. The
    event loop is single-threaded, so the table needs no lock.
    """

    def __init__(self, app: ASGIApp, settings: EdgeSource) -> None:
        self.app = app
        self.settings = settings
        self.buckets: TokenBuckets | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        edge = self.settings()
        rule = _limited(scope, edge) if scope["type"] == "http" else None
        if rule is None or edge.rate_limit_per_s <= 0:
            await self.app(scope, receive, send)
            return
        if self.buckets is None or self.buckets.capacity != edge.rate_limit_clients:
            self.buckets = TokenBuckets(capacity=edge.rate_limit_clients)
        client = client_address(scope, trust_forwarded=edge.trust_forwarded)
        wait = self.buckets.take(client, rate=edge.rate_limit_per_s, burst=edge.rate_limit_burst)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        metrics.RATE_LIMITED.labels(rule=rule).inc()
        response = error_response(
            429, f"rate limit: at most {edge.rate_limit_per_s:g} submissions per second "
            f"(bursts of {edge.rate_limit_burst}) per client; retry in {max(wait, 0.1):.1f} s",
            code="rate_limited", retry_after_s=wait)
        await response(scope, receive, send)


def _limited(scope: Scope, edge: EdgeSettings) -> str | None:
    """The configured rule that covers this request, if any."""
    method, path = scope["method"], scope["path"]
    for rule in edge.rate_limited_paths:
        want, _, prefix = rule.rpartition(" ")
        if _covers(want, method) and path.startswith(prefix):
            return rule
    return None


def _covers(want: str, method: str) -> bool:
    # A GET route answers HEAD by running the same handler (Starlette adds HEAD to every GET
    # route), so a HEAD is the same submission: a rule for GET covers it.
    return not want or want == method or (want == "GET" and method == "HEAD")


def client_address(scope: Scope, *, trust_forwarded: bool) -> str:
    """The client's address: the socket peer, or the last X-Forwarded-For entry when the
    proxy in front is trusted (the last entry is the one that proxy added; earlier ones come
    from the client and can say anything)."""
    if trust_forwarded:
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                last = value.decode("latin-1").rsplit(",", 1)[-1].strip()
                if last:
                    return last[:64]
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class JsonCors(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as a JSON error like every other."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        why = bytes(response.body).decode(errors="replace")  # e.g. "Disallowed CORS origin"
        refused = error_response(response.status_code, why, code="cors_refused")
        if "vary" in response.headers:
            refused.headers["vary"] = response.headers["vary"]
        return refused


def with_edge(app: ASGIApp, settings: EdgeSource) -> ASGIApp:
    """Wrap the app: CORS outermost (so refusals carry its headers too), then the rate limit."""
    limited = RateLimit(app, settings)
    edge = settings()
    if not edge.cors_origins:
        return limited
    return JsonCors(
        limited,
        allow_origins=edge.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["authorization", "content-type", "x-cancel-token"],
        expose_headers=["Retry-After", "X-Queue-Position", "Location"],
        max_age=edge.cors_max_age_s,
    )

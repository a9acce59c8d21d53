"""Fault injection: per-endpoint latency, error statuses, dropped connections, malformed bodies, expired tokens,
and the fair-use limit that VCC shares across all its APIs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from vccsim.wire import Drop, SimError

ALL_ENDPOINTS = "*"
# VCC's fair-use limit: "around 160 requests per minute", shared by every VCC API an account uses (vcc-api.md §3.3).
FAIR_USE_LIMIT = 160
DROPS = ("before", "after")
BODIES = ("truncated", "empty")

_JSON_NAMES = {
    "latencyMs": "latency_ms",
    "status": "status",
    "retryAfter": "retry_after",
    "drop": "drop",
    "body": "body",
    "expireTokens": "expire_tokens",
    "count": "count",
}


@dataclass
class Fault:
    """What goes wrong for requests to one endpoint; ``count`` requests (None: until cleared)."""

    latency_ms: int = 0
    status: int | None = None  # answer with this error status instead of handling the request
    retry_after: int | None = None  # seconds, sent as Retry-After with ``status``
    drop: Drop | None = None  # "before": never handled; "after": handled, then the connection closes
    body: str | None = None  # "truncated" or "empty": handled, then the body is spoiled
    expire_tokens: bool = False  # every token issued so far expires before the request is handled
    count: int | None = None

    def __post_init__(self) -> None:
        problems = [
            self.latency_ms < 0 and "latencyMs must not be negative",
            self.status is not None and not 400 <= self.status <= 599 and "status must be 400-599",
            self.drop not in (None, *DROPS) and f"drop must be one of {DROPS}",
            self.body not in (None, *BODIES) and f"body must be one of {BODIES}",
            self.count is not None and self.count < 1 and "count must be at least 1",
        ]
        if found := [problem for problem in problems if problem]:
            raise SimError(400, "; ".join(found))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        unknown = sorted(set(data) - set(_JSON_NAMES))
        if unknown:
            raise SimError(400, f"Unknown fault fields {unknown}; expected some of {sorted(_JSON_NAMES)}")
        try:
            return cls(**{_JSON_NAMES[name]: value for name, value in data.items()})
        except TypeError as error:
            raise SimError(400, f"Malformed fault: {error}") from None

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {name: values[attribute] for name, attribute in _JSON_NAMES.items()}


class Faults:
    """The fault configuration: a Fault per endpoint name (or ``*`` for all) and the fair-use limit."""

    def __init__(self) -> None:
        self.rules: dict[str, Fault] = {}
        self.fair_use_limit: int | None = None  # requests per window across every endpoint
        self.fair_use_window = 60.0
        self._window_start = -math.inf
        self._window_used = 0

    def set(self, endpoint: str, fault: Fault) -> None:
        self.rules[endpoint] = fault

    def clear(self, endpoint: str | None = None) -> None:
        if endpoint is None:
            self.rules.clear()
        else:
            self.rules.pop(endpoint, None)

    def set_fair_use(self, limit: int | None, window_seconds: float = 60.0) -> None:
        if (limit is not None and limit < 0) or window_seconds <= 0:
            raise SimError(400, "limit must be null or at least 0, and windowSeconds positive")
        self.fair_use_limit = limit
        self.fair_use_window = window_seconds
        self._window_start = -math.inf

    def take(self, endpoint: str) -> Fault | None:
        """The fault that applies to this request to ``endpoint``, using up one of its count."""
        name = endpoint if endpoint in self.rules else ALL_ENDPOINTS
        fault = self.rules.get(name)
        if fault is not None and fault.count is not None:
            fault.count -= 1
            if fault.count == 0:
                del self.rules[name]
        return fault

    def fair_use_retry_after(self, now: float, speed: float = 1.0) -> int | None:
        """Count a request against the fair-use limit; clock seconds to wait when it is over the limit.

        The window is one of real time (``fair_use_window`` real seconds, ``speed`` clock seconds each): VCC limits
        what an account asks in a real minute, and a sped-up clock must not let a client ask 60 times as much."""
        if self.fair_use_limit is None:
            return None
        window = self.fair_use_window * speed
        if now >= self._window_start + window:
            self._window_start, self._window_used = now, 0
        self._window_used += 1
        if self._window_used <= self.fair_use_limit:
            return None
        return max(1, math.ceil(self._window_start + window - now))

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoints": {name: fault.to_json() for name, fault in self.rules.items()},
            "fairUse": {"limit": self.fair_use_limit, "windowSeconds": self.fair_use_window},
        }

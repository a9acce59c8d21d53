"""The simulator's sense of time: real time sped up, or a manual clock that moves only when told."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime


class Clock:
    """Seconds since the epoch as the simulator sees them.

    With ``manual=False`` the clock follows real time multiplied by ``speed`` (``speed=60`` turns a minute-long call
    into one real second). With ``manual=True`` it stands still until ``advance()`` moves it. ``advance()`` works in
    both modes, so a running demo can be fast-forwarded too.
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        manual: bool = False,
        start: float | None = None,
        real: Callable[[], float] = time.monotonic,
    ) -> None:
        """`real` is the source of real time (seconds, monotonic); tests pass their own."""
        if speed <= 0:
            raise ValueError(f"Clock speed must be positive, not {speed!r}")
        self.speed = speed
        self.manual = manual
        self._real = real
        self._start = time.time() if start is None else start
        self._real_start = real()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            elapsed = 0.0 if self.manual else (self._real() - self._real_start) * self.speed
            return self._start + elapsed + self._offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("The clock only moves forward")
        with self._lock:
            self._offset += seconds

    def real_seconds(self, seconds: float) -> int:
        """How many real seconds `seconds` of clock time last, for what clients wait on (expires_in, Retry-After).

        A manual clock moves only when told, so its seconds are passed through as they are.
        """
        if self.manual:
            return math.ceil(seconds)
        return max(1, math.ceil(seconds / self.speed))

    @property
    def seconds_per_real_second(self) -> float:
        """Clock seconds in a real one: ``speed``, or 1 for a manual clock (whose seconds are the test's)."""
        return 1.0 if self.manual else self.speed

    def __repr__(self) -> str:
        mode = "manual" if self.manual else f"speed={self.speed}"
        return f"<Clock {mode} at {isoformat(self.now())}>"


def isoformat(timestamp: float) -> str:
    """Format a clock reading as an ISO 8601 UTC timestamp, the way JSON APIs usually do."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def isoformat_ms(timestamp: float) -> str:
    """ISO 8601 UTC to the millisecond, for event times: several events can happen within one second."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

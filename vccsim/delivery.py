"""Webhook deliveries: the queue of signed POSTs to subscribers, their retries, and the faults they can suffer.

The queue runs on the simulator's clock: a delivery is due at a clock time, and a failed one is retried 1, 2, 4, 8
and 16 clock seconds later (an assumption: VCC does not publish its schedule). Nothing here sleeps; whoever calls
``Simulator.deliver_pending()`` sends what is due — a test, or the ``Deliverer`` thread of a served simulator.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import jwt

from vccsim.clock import isoformat_ms
from vccsim.wire import SimError

if TYPE_CHECKING:
    from vccsim.simulator import Simulator

log = logging.getLogger(__name__)

RETRY_DELAYS = (1, 2, 4, 8, 16)  # clock seconds before the 2nd, 3rd... attempt; then the delivery is given up
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
TIMEOUT = httpx.Timeout(5.0, connect=3.0)  # a receiver must answer within 5 s, as VCC would expect (assumed)
SIGNATURE_FAULTS = ("wrong-key", "undecoded-key", "alg-none", "wrong-hash", "missing")
LOG_SIZE = 1000  # attempts kept for inspection

_JSON_NAMES = {
    "delaySeconds": "delay_seconds",
    "duplicate": "duplicate",
    "reorder": "reorder",
    "drop": "drop",
    "signature": "signature",
    "count": "count",
}


@dataclass
class WebhookFault:
    """What goes wrong for the next ``count`` deliveries (None: until cleared); a delivery is one event to one
    subscription. Effects combine: a duplicated delivery can also be badly signed."""

    delay_seconds: float = 0  # hold each delivery this many clock seconds
    duplicate: bool = False  # send each delivery twice (same event id, same body)
    reorder: bool = False  # hold deliveries, then release them in reverse order when the fault ends
    drop: bool = False  # lose the delivery: never sent
    signature: str | None = None  # sign it wrongly: one of SIGNATURE_FAULTS
    count: int | None = None

    def __post_init__(self) -> None:
        problems = [
            (isinstance(self.delay_seconds, bool) or not isinstance(self.delay_seconds, int | float))
            and "delaySeconds must be a number",
            isinstance(self.delay_seconds, int | float)
            and self.delay_seconds < 0
            and "delaySeconds must not be negative",
            not all(isinstance(flag, bool) for flag in (self.duplicate, self.reorder, self.drop))
            and "duplicate, reorder and drop must be true or false",
            self.signature not in (None, *SIGNATURE_FAULTS) and f"signature must be one of {SIGNATURE_FAULTS}",
            self.count is not None
            and (not isinstance(self.count, int) or self.count < 1)
            and "count must be a whole number, at least 1",
        ]
        if found := [problem for problem in problems if problem]:
            raise SimError(400, "; ".join(found))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WebhookFault:
        unknown = sorted(set(data) - set(_JSON_NAMES))
        if unknown:
            raise SimError(400, f"Unknown webhook fault fields {unknown}; expected some of {sorted(_JSON_NAMES)}")
        return cls(**{_JSON_NAMES[name]: value for name, value in data.items()})

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {name: values[attribute] for name, attribute in _JSON_NAMES.items()}


@dataclass
class Delivery:
    """One event on its way to one subscription; the body is the exact bytes every attempt sends."""

    seq: int
    subscription_id: str
    url: str
    key: bytes  # the decoded subscription secret
    event_id: str
    event_type: str
    body: bytes
    due_at: float  # clock time
    attempts: int = 0
    signature_fault: str | None = None


@dataclass
class Outbox:
    """Deliveries waiting to be sent, those held by a reorder fault, the active fault and the log of attempts."""

    pending: list[Delivery] = field(default_factory=list)
    held: list[Delivery] = field(default_factory=list)
    fault: WebhookFault | None = None
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    _seq: int = 0

    def add(self, delivery: Delivery, now: float) -> None:
        """Queue a delivery, through the fault if one is set."""
        fault = self._take_fault()
        if fault is None:
            self.pending.append(delivery)
            return
        if fault.drop:
            self.note(delivery, now, outcome="dropped", error="dropped by the webhook fault")
            return
        delivery.due_at += fault.delay_seconds
        delivery.signature_fault = fault.signature
        copies = [delivery, self.copy(delivery)] if fault.duplicate else [delivery]
        (self.held if fault.reorder else self.pending).extend(copies)
        if fault.reorder and self.fault is None:  # that was the fault's last delivery
            self.release_held()

    def copy(self, delivery: Delivery) -> Delivery:
        return Delivery(**{**vars(delivery), "seq": self.next_seq()})

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _take_fault(self) -> WebhookFault | None:
        fault = self.fault
        if fault is not None and fault.count is not None:
            fault.count -= 1
            if fault.count == 0:
                self.fault = None
        return fault

    def set_fault(self, fault: WebhookFault | None) -> None:
        self.fault = fault
        if fault is None or not fault.reorder:
            self.release_held()

    def release_held(self) -> None:
        """Send what a reorder fault held, last first, none before the latest of them was due."""
        if not self.held:
            return
        due_at = max(delivery.due_at for delivery in self.held)
        for delivery in reversed(self.held):
            delivery.seq, delivery.due_at = self.next_seq(), due_at
            self.pending.append(delivery)
        self.held.clear()

    def take_due(self, now: float) -> list[Delivery]:
        due = sorted((item for item in self.pending if item.due_at <= now), key=lambda item: (item.due_at, item.seq))
        taken = {id(item) for item in due}
        self.pending = [item for item in self.pending if id(item) not in taken]
        return due

    def settle(self, delivery: Delivery, now: float, status: int | None, error: str | None) -> dict[str, Any]:
        """Record an attempt; queue the next one after a failure, until MAX_ATTEMPTS."""
        if status is not None and 200 <= status < 300:
            outcome = "delivered"
        elif delivery.attempts < MAX_ATTEMPTS:
            outcome = "retrying"
            delivery.due_at = now + RETRY_DELAYS[delivery.attempts - 1]
            self.pending.append(delivery)
        else:
            outcome = "gave up"
        return self.note(delivery, now, outcome=outcome, status=status, error=error)

    def forget(self, subscription_id: str) -> None:
        self.pending = [item for item in self.pending if item.subscription_id != subscription_id]
        self.held = [item for item in self.held if item.subscription_id != subscription_id]

    def note(
        self, delivery: Delivery, now: float, *, outcome: str, status: int | None = None, error: str | None = None
    ) -> dict[str, Any]:
        entry = {
            "eventId": delivery.event_id,
            "type": delivery.event_type,
            "subscriptionId": delivery.subscription_id,
            "attempt": delivery.attempts,
            "at": isoformat_ms(now),
            "status": status,
            "error": error,
            "outcome": outcome,
        }
        self.log.append(entry)
        return entry


def signature_header(delivery: Delivery) -> dict[str, str]:
    """``Vonage-Signature: Bearer <JWT>``: HS256 over {iat, payload_hash} with the decoded secret, or spoilt."""
    how = delivery.signature_fault
    if how == "missing":
        return {}
    payload_hash = hashlib.sha256(delivery.body if how != "wrong-hash" else delivery.body + b" ").hexdigest()
    # iat is real time, not the clock's: a receiver checks it against its own clock, and a sped-up clock runs ahead.
    claims = {"iat": int(time.time()), "payload_hash": payload_hash}
    if how == "alg-none":
        token = jwt.encode(claims, None, algorithm="none")
    else:
        key = {
            "wrong-key": secrets.token_bytes(32),
            "undecoded-key": base64.b64encode(delivery.key),  # the base64 text itself: a receiver's classic slip
        }.get(how or "", delivery.key)
        token = jwt.encode(claims, key, algorithm="HS256")
    return {"Vonage-Signature": f"Bearer {token}"}


def send(client: httpx.Client, delivery: Delivery) -> tuple[int | None, str | None]:
    """POST one delivery; the receiver's status, or None and what went wrong on the way."""
    headers = {"Content-Type": "application/cloudevents+json", **signature_header(delivery)}
    try:
        response = client.post(delivery.url, content=delivery.body, headers=headers)
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {error}"
    return response.status_code, None


def new_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    # trust_env=False: a proxy from the environment must not stand between the simulator and a loopback receiver.
    return httpx.Client(timeout=TIMEOUT, transport=transport, trust_env=False, follow_redirects=False)


class Deliverer:
    """A daemon thread that sends what is due every ``interval`` real seconds, for a simulator left to run."""

    def __init__(self, sim: Simulator, interval: float = 0.05) -> None:
        self._sim = sim
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vccsim-webhooks", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with new_client(self._sim.webhook_transport) as client:
            while not self._stop.wait(self._interval):
                try:
                    self._sim.deliver_pending(client=client)
                except Exception:  # keep delivering: one broken receiver must not stop the others
                    log.exception("vccsim: webhook delivery failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

"""VCC's events as its Webhooks API delivers them: the signature check and the CloudEvents envelope.

What the public docs say (vcc-api.md §10.3), and what this module does with it:

- FACT: each delivery carries `Vonage-Signature: Bearer <JWT>`. The JWT is signed with the subscription's secret,
  base64-decoded (Vonage's own sample consumer does `Buffer.from(secret, 'base64')`), and its claim `payload_hash`
  is the hex SHA-256 of the raw body. The sample verifies with jsonwebtoken's defaults, and this is no stricter:
  HS256 is INFERRED, so HS384 and HS512 are accepted too (any HMAC; `alg: none` and the others are refused by
  pyjwt); an `aud` claim is not checked (the sample passes no audience); `iat`, `nbf` and `exp` are allowed LEEWAY
  for clocks apart. `payload_hash` is required, and must match.
- The key is VCC's subscription secret, whatever its length: VCC signs with it as it is, so vccweb can neither
  lengthen it nor refuse HS384 and HS512 (VCC chooses the algorithm). Its length is checked once, at start
  (calls.W002); pyjwt's check per event (a key shorter than the hash) could only warn about a secret already
  chosen, so it is given the key zero-padded to 64 bytes, which HMAC makes of it anyway (`_hmac_key`).
- FACT: the body is `application/cloudevents+json`, the event's name in `type`. CloudEvents' batch mode
  (`application/cloudevents-batch+json`, a JSON array of events) is accepted too, should VCC send it.
- Two secrets may be valid at once while one is rotated (`VCC_WEBHOOK_SECRETS`).

Nothing here reads or logs the body beyond parsing it; a refusal says why in a sentence.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

MAX_BODY = 256 * 1024
HMAC_PADDED = 64  # bytes: SHA-512's digest, the longest pyjwt asks of a key; SHA-256's block
ALGORITHMS = ["HS256", "HS384", "HS512"]
LEEWAY = 60  # seconds: VCC's clock and ours may be apart
SINGLE = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"


class Refused(Exception):
    """The delivery is refused with `status` and a sentence that says what was wrong."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


@dataclass(frozen=True)
class Envelope:
    """One CloudEvent: its unique id, type (`channel.connected.v1`), when it happened, what it is about, its data."""

    id: str
    type: str
    source: str
    subject: str
    time: datetime | None
    data: dict[str, Any]


def verify(header: str | None, body: bytes, keys: list[bytes]) -> None:
    """Check `Vonage-Signature` against the raw body, with any of the keys; raise Refused (401) if it fails."""
    if not keys:
        raise Refused(
            401, "vccweb has no webhook secret configured (VCC_WEBHOOK_SECRETS), so it accepts no event.", "no secret"
        )
    if not header:
        raise Refused(401, "The Vonage-Signature header is missing.", "missing")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "The Vonage-Signature header must be 'Bearer <JWT>'.", "malformed")
    claims = None
    for key in keys:
        try:
            claims = jwt.decode(
                token.strip(),
                _hmac_key(key),
                algorithms=ALGORITHMS,
                leeway=LEEWAY,
                options={"require": ["payload_hash"], "verify_aud": False},
            )
            break
        except jwt.InvalidSignatureError:
            continue  # another secret (one being rotated in or out) may have signed it
        except jwt.MissingRequiredClaimError as exc:
            raise Refused(401, "The signature has no payload_hash claim.", "no hash") from exc
        except jwt.InvalidAlgorithmError as exc:
            raise Refused(401, "The signature must use HS256, HS384 or HS512.", "algorithm") from exc
        except jwt.ExpiredSignatureError as exc:
            raise Refused(
                401,
                f"The signature expired (exp) more than {LEEWAY} s before this server's time: an old delivery sent "
                "again, or clocks apart; check this server's clock (NTP).",
                "expired",
            ) from exc
        except jwt.ImmatureSignatureError as exc:
            raise Refused(
                401,
                f"The signature is dated (iat or nbf) more than {LEEWAY} s after this server's time: clocks apart; "
                "check this server's clock (NTP).",
                "clock",
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise Refused(401, f"The signature is not a valid JWT ({type(exc).__name__}).", "malformed") from exc
    if claims is None:
        raise Refused(401, "The signature was made with a key vccweb does not know.", "wrong key")
    expected = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(str(claims["payload_hash"]).lower().encode(), expected.encode()):
        raise Refused(401, "The signature's payload_hash does not match the body.", "wrong hash")


def _hmac_key(key: bytes) -> bytes:
    """`key` as HMAC uses it with SHA-256, -384 and -512 alike: zero-padded to 64 bytes when shorter.

    HMAC pads a key up to its hash's block (64 bytes for SHA-256, 128 for SHA-384 and SHA-512) with zero bytes
    (RFC 2104 section 2), so the padded key verifies exactly the signatures the secret made, and no others; a key
    longer than 64 bytes is left alone (SHA-256 would hash it first, and no hash asks for more)."""
    return key.ljust(HMAC_PADDED, b"\0")


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse(content_type: str, body: bytes) -> list[Envelope]:
    """The events of a delivery, or Refused (400/415) saying what is wrong."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in (SINGLE, BATCH):
        raise Refused(415, f"Send events as {SINGLE} (or {BATCH}), not {kind or 'no content type'}.", "content type")
    try:
        document = json.loads(body, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise Refused(400, f"The body is not JSON: {exc}.", "not json") from exc
    except RecursionError as exc:
        raise Refused(400, "The body is nested too deeply to be an event.", "not json") from exc
    try:  # what PostgreSQL cannot store (a NUL, half of a surrogate pair) would fail a whole write: refused here
        stored = json.dumps(document, ensure_ascii=False).encode()
    except (UnicodeEncodeError, ValueError) as exc:
        raise Refused(400, "The body holds text that is not Unicode (half of a surrogate pair).", "not json") from exc
    if b"\\u0000" in stored:
        raise Refused(400, "The body holds a NUL character, which no event needs.", "not json")
    items = document if kind == BATCH else [document]
    if not isinstance(items, list) or not items:
        raise Refused(400, "A batch must be a JSON array of one or more events.", "not a batch")
    return [_envelope(item, position) for position, item in enumerate(items, start=1)]


def _envelope(item: object, position: int) -> Envelope:
    if not isinstance(item, dict):
        raise Refused(400, f"Event {position} is not a JSON object.", "not an event")
    missing = [name for name in ("id", "type", "source") if not isinstance(item.get(name), str) or not item[name]]
    if missing:
        raise Refused(400, f"Event {position} lacks {', '.join(missing)} (CloudEvents requires them).", "not an event")
    if len(item["id"]) > 255:
        raise Refused(400, f"Event {position}'s id is longer than 255 characters.", "not an event")
    data = item.get("data")
    if data is not None and not isinstance(data, dict):
        raise Refused(400, f"Event {position}'s data is not a JSON object.", "not an event")
    time = None
    if isinstance(item.get("time"), str):
        try:
            time = datetime.fromisoformat(item["time"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise Refused(400, f"Event {position}'s time is not an RFC 3339 time.", "not an event") from exc
        if time.tzinfo is None:
            raise Refused(400, f"Event {position}'s time has no offset.", "not an event")
    return Envelope(
        id=item["id"],
        type=item["type"][:100],
        source=item["source"][:255],
        subject=str(item.get("subject") or "")[:255],
        time=time,
        data=data or {},
    )

"""Signing webhooks as Standard Webhooks says (https://www.standardwebhooks.com), with its own library.

Each delivery carries webhook-id (the event's msg_id, the same on every retry), webhook-timestamp (seconds) and
webhook-signature: "v1,<base64 HMAC-SHA256 of id.timestamp.body>" for each secret the endpoint signs with, space
separated (the current one, and each one a rotation replaced for its own 24 hours after, so receivers can switch
over)."""

import base64
import binascii
import secrets as random
from datetime import datetime
from math import floor
from typing import Protocol

from django.core.exceptions import ValidationError
from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 24
USER_AGENT = "vccweb-webhooks/1"


class Signer(Protocol):
    def signing_secrets(self, now: datetime) -> list[str]: ...


def new_secret() -> str:
    """A new signing secret: whsec_ and the base64 of 24 random bytes."""
    return PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode("ascii")


def check_secret(text: str) -> str:
    """A secret given by an admin (manage.py --secret), or ValidationError saying what is wrong with it."""
    text = text.strip()
    if not text.startswith(PREFIX):
        raise ValidationError(f"The secret must start with {PREFIX} (for example {PREFIX}<base64 text>).")
    try:
        key = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"The secret after {PREFIX} must be base64 text.") from None
    if not 24 <= len(key) <= 64:
        raise ValidationError(f"The secret must decode to 24 to 64 bytes, not {len(key)}.")
    return text


def signature_header(secrets: list[str], msg_id: str, at: datetime, body: bytes) -> str:
    """The webhook-signature header: one v1 signature per secret, space separated."""
    return " ".join(Webhook(secret).sign(msg_id=msg_id, timestamp=at, data=body) for secret in secrets)


def headers(endpoint: Signer, msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    """Every header a delivery is sent with, signed with the secrets the endpoint signs with at that moment."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signature_header(endpoint.signing_secrets(at), msg_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }

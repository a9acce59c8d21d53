"""VCC's documented request rules, checked before anything is sent. Messages are VCC's own, verbatim."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from .errors import VCCError
from .types import CONSENT_VALUES, RECORDING_VALUES, CallRequest

_DIGITS = re.compile(r"[0-9]+")
_ALPHANUMERIC = re.compile(r"[A-Za-z0-9]+")
_MAX_AGENT_ID = 11
_MAX_NUMBER = 30
_MAX_REFERENCE = 2000
_MAX_APPLICATION = 32
_MAX_DISPOSITION = 255

# Not documented by VCC (UNCONFIRMED); worded like its "to" message.
BOTH_FROM_MESSAGE = "Either agent id or groups required, not both"
GROUP_MESSAGE = "Group Id must not be blank"
CONSENT_MESSAGE = f"Consent must be one of {', '.join(CONSENT_VALUES)}"


# Fields each API version introduced (Accept: application/json;version=N).
REFERENCE_VERSION = 4
CONSENT_VERSION = 6


def validate_call_request(req: CallRequest, *, api_version: int = CONSENT_VERSION) -> None:
    """Raise `VCCError(local=True)` unless VCC's documented rules accept `req` at `api_version`."""
    if (req.reference or req.application) and api_version < REFERENCE_VERSION:
        raise VCCError.invalid(f"A reference and an application need API version {REFERENCE_VERSION} or later")
    if (req.consent or req.to_consent) and api_version < CONSENT_VERSION:
        raise VCCError.invalid(f"Consent needs API version {CONSENT_VERSION} or later")
    if req.from_agent_id and req.from_groups:
        raise VCCError.invalid(BOTH_FROM_MESSAGE)
    if req.from_groups:
        if any(not group.strip() for group in req.from_groups):
            raise VCCError.invalid(GROUP_MESSAGE)
    elif req.from_agent_id:
        validate_agent_id(req.from_agent_id)
    else:
        raise VCCError.invalid("Agent Id must be specified")

    if req.to_number and req.to_agent_id:
        raise VCCError.invalid("Either telephone number or agent id required, not both")
    if req.to_number:
        if len(req.to_number) > _MAX_NUMBER:
            raise VCCError.invalid("Telephone number exceeds 30 characters")
    elif req.to_agent_id:
        validate_agent_id(req.to_agent_id)
    else:
        raise VCCError.invalid("Either telephone number or agent id required")

    for consent in (req.consent, req.to_consent):
        if consent and consent not in CONSENT_VALUES:
            raise VCCError.invalid(CONSENT_MESSAGE)
    if req.reference:
        if len(req.reference) > _MAX_REFERENCE:
            raise VCCError.invalid("Reference exceeded 2000 characters")
        if not (_ALPHANUMERIC.fullmatch(req.reference) or _is_url(req.reference)):
            raise VCCError.invalid("Reference contained invalid characters")
    if req.application:
        if len(req.application) > _MAX_APPLICATION:
            raise VCCError.invalid("Application exceeded 32 characters")
        if not _ALPHANUMERIC.fullmatch(req.application):
            raise VCCError.invalid("Application contains non-alphanumeric characters")


def validate_agent_id(agent_id: str) -> None:
    if not _DIGITS.fullmatch(agent_id):
        raise VCCError.invalid("Agent Id must contain digits only")
    if len(agent_id) > _MAX_AGENT_ID:
        raise VCCError.invalid("Agent Id exceeds 11 digits")


def validate_recording_status(status: str) -> None:
    if status not in RECORDING_VALUES:
        raise VCCError.invalid(f"Recording status must be one of {', '.join(RECORDING_VALUES)}")


def validate_disposition_code(code: str) -> None:
    # VCC's own texts (typos and all); its docs disagree on 64 or 255 as the limit, so allow the larger.
    if not code.strip():
        raise VCCError.invalid("Disposition code field was expected. ")
    if len(code) > _MAX_DISPOSITION:
        raise VCCError.invalid("Disposition code excceeds 255 characters.")


def validate_call_id(call_id: str) -> None:
    # Call ids are GUIDs; anything path-like would address a different resource.
    if not call_id or not re.fullmatch(r"[A-Za-z0-9-]+", call_id):
        raise VCCError.invalid("Call Id is not valid")


def _is_url(value: str) -> bool:
    # Deliberately lenient (hosts such as "localhost" or "testserver" are fine): VCC only says "a valid URL".
    if any(ch.isspace() for ch in value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)

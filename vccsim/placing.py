"""Reading and validating a ``POST calls`` body, with VCC's own messages (vcc-api.md §7.3)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vccsim.wire import SimError

DEFAULT_VERSION = 3  # no version in Accept or Content-Type: the oldest documented behaviour (before regarding)
CONSENTS = ("Unknown", "OneParty", "TwoParty")
INVALID_REQUEST = "The request is invalid."

# Fields that need a minimum API version, with the simulator's message when the request asks for less.
VERSIONED_FIELDS = (
    ("reference", 4, "Reference is supported from version 4 of the API"),
    ("application", 4, "Application is supported from version 4 of the API"),
    ("consent", 6, "Consent is supported from version 6 of the API"),
)


@dataclass(frozen=True)
class CallRequest:
    agent_id: str | None
    groups: tuple[str, ...]
    presented_clid: str | None
    from_consent: str | None
    telephone_number: str | None
    dialled_agent_id: str | None
    to_consent: str | None
    reference: str | None
    application: str | None


def parse_call_request(data: Any, version: int) -> CallRequest:
    """Validate the decoded body in the order VCC is assumed to (see README) and return what it asks for."""
    if not isinstance(data, dict):
        raise SimError(400, INVALID_REQUEST)
    body = json_object(data)
    source, target = json_object(body.get("from")), json_object(body.get("to"))
    request = CallRequest(
        agent_id=text_field(source.get("agentid")),
        groups=_groups(source.get("groups")),
        presented_clid=text_field(source.get("presentedclid")),
        from_consent=text_field(source.get("consent")),
        telephone_number=text_field(target.get("telephonenumber")),
        dialled_agent_id=text_field(target.get("agentid")),
        to_consent=text_field(target.get("consent")),
        reference=text_field(json_object(body.get("regarding")).get("reference")),
        application=text_field(body.get("application")),
    )
    _check_version(request, version)
    _check_selectors(request, source)
    _check_formats(request)
    return request


def _check_version(request: CallRequest, version: int) -> None:
    present = {
        "reference": request.reference,
        "application": request.application,
        "consent": request.from_consent or request.to_consent,
    }
    for name, minimum, message in VERSIONED_FIELDS:
        if present[name] is not None and version < minimum:
            raise SimError(400, message)


def _check_selectors(request: CallRequest, source: Mapping[str, Any]) -> None:
    if request.telephone_number is None and request.dialled_agent_id is None:
        raise SimError(400, "Either telephone number or agent id required")
    if request.telephone_number is not None and request.dialled_agent_id is not None:
        raise SimError(400, "Either telephone number or agent id required, not both")
    if text_field(source.get("telephonenumber")) is not None:
        raise SimError(400, "Telephone number not supported in this context")
    if request.agent_id is not None and request.groups:
        raise SimError(400, "Either agent id or groups required, not both")
    if request.agent_id is None and not request.groups:
        raise SimError(400, "Agent Id must be specified")


def _check_formats(request: CallRequest) -> None:
    if request.telephone_number is not None and len(request.telephone_number) > 30:
        raise SimError(400, "Telephone number exceeds 30 characters")
    for agent_id in (request.agent_id, request.dialled_agent_id):
        if agent_id is None:
            continue
        if len(agent_id) > 11:
            raise SimError(400, "Agent Id exceeds 11 digits")
        if not agent_id.isascii() or not agent_id.isdigit():
            raise SimError(400, "Agent Id must contain digits only")
    if request.reference is not None:
        if len(request.reference) > 2000:
            raise SimError(400, "Reference exceeded 2000 characters")
        if not _is_alphanumeric(request.reference) and not _is_url(request.reference):
            raise SimError(400, "Reference contained invalid characters")
    if request.application is not None:
        if len(request.application) > 32:
            raise SimError(400, "Application exceeded 32 characters")
        if not _is_alphanumeric(request.application):
            raise SimError(400, "Application contains non-alphanumeric characters")
    for consent in (request.from_consent, request.to_consent):
        if consent is not None and consent not in CONSENTS:
            raise SimError(400, "Consent must be one of Unknown, OneParty, TwoParty")


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object with lower-cased property names (VCC's binder is taken to be case-insensitive); {} for null."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SimError(400, INVALID_REQUEST)
    return {str(name).lower(): item for name, item in value.items()}


def text_field(value: Any) -> str | None:
    """A string field; numbers are read as text, blanks as absent, anything else as sent: VCC's rules (digits only,
    alphanumeric, one of the consent words) leave no room for a space around the value."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SimError(400, INVALID_REQUEST)
    return value if value.strip() else None


def _groups(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SimError(400, INVALID_REQUEST)
    return tuple(group for group in (text_field(item) for item in value) if group)


def _is_alphanumeric(value: str) -> bool:
    return re.fullmatch(r"[A-Za-z0-9]+", value) is not None


def _is_url(value: str) -> bool:
    if re.search(r"\s", value):
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)

"""Requests and responses as the simulator sees them, independent of the front door (socket or httpx transport)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

NOT_FOUND = "The requested resource was not found."
INVALID_TOKEN = "The access token is invalid or has expired"

Drop = Literal["before", "after"]


@dataclass(frozen=True)
class SimRequest:
    method: str
    base_url: str  # scheme://host of the request, used to build links the way VCC does
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @classmethod
    def build(cls, method: str, url: str, headers: Mapping[str, str], body: bytes) -> SimRequest:
        parts = urlsplit(url)
        base_url = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "http://vccsim"
        return cls(
            method=method.upper(),
            base_url=base_url,
            path=parts.path or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in headers.items()},
            body=body,
        )

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def media_type(self) -> str:
        """The Content-Type without parameters; RFC 9110's default when the header is missing."""
        value = self.header("content-type").split(";")[0].strip().lower()
        return value or "application/octet-stream"

    def json(self) -> Any:
        """Decode the body as JSON, or fail the way the simulator documents for malformed JSON."""
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise SimError(400, "The request is invalid.") from None


@dataclass
class SimResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    delay: float = 0.0  # seconds the front door waits before answering (injected latency)
    drop: Drop | None = None  # close the connection instead of answering

    def json(self) -> Any:
        return json.loads(self.body)


class SimError(Exception):
    """An error answer: ``{"message": ...}`` by default, or any JSON ``payload`` (OAuth errors)."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        payload: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message or payload)
        self.status = status
        self.payload = payload if payload is not None else {"message": message}
        self.headers = dict(headers or {})

    @classmethod
    def oauth(cls, error: str, description: str, status: int = 400) -> SimError:
        return cls(status, payload={"error": error, "error_description": description})

    def response(self) -> SimResponse:
        return json_response(self.status, self.payload, self.headers)


def json_response(status: int, data: Any, headers: Mapping[str, str] | None = None) -> SimResponse:
    body = json.dumps(data).encode()
    return SimResponse(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, body)


def client_credentials(request: SimRequest, form: Mapping[str, str]) -> tuple[str, str]:
    """OAuth client credentials from HTTP Basic, else from the ``client_id``/``client_secret`` form fields."""
    scheme, _, encoded = request.header("authorization").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "", ""
        return client_id, secret
    return form.get("client_id", ""), form.get("client_secret", "")


def form_fields(request: SimRequest) -> dict[str, str]:
    """The body of a token request, which must be form-encoded."""
    if request.media_type() != "application/x-www-form-urlencoded":
        raise SimError.oauth("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
    return dict(parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True))


def header_version(value: str) -> int | None:
    """The ``version=N`` parameter of an Accept or Content-Type header."""
    match = re.search(r"version\s*=\s*\"?(\d+)", value, re.IGNORECASE)
    return int(match.group(1)) if match else None

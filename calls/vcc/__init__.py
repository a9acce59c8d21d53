"""The only code in `calls` that knows VCC's HTTP API.

Where VCC's docs are silent (UNCONFIRMED in vcc-api.md), the client decides:
- `from.agentId` with `from.groups` is refused as "Either agent id or groups required, not both"; a consent outside
  Unknown/OneParty/TwoParty as "Consent must be one of Unknown, OneParty, TwoParty".
- A reference is "a valid URL" when it is http(s) with a host and no spaces (so `http://testserver/...` passes).
- Disposition codes may be up to 255 characters (the docs say 64 and 255).
- A 201 without a call id in its body takes the id from `Location`; without either it is an error that says the
  call may have been placed. Recording and disposition accept any 2xx, with or without an echo in the body.
- After a 5xx other than 503, or a timeout or dropped connection once the request was sent, a call request may have
  been placed (`may_have_placed`), and such errors are not `retryable`.
- An error's text is its body's `message` (or `error_description`, `error`), the name matched in any case
  (`Message`, as ASP.NET Web API writes its own errors).
- A call has ended when it has a `result`, or its status is null or an end word; "Active" means live.
- Gateway pages: the first request names no page; `meta.page` says where counting starts.
"""

from __future__ import annotations

from .client import AsyncVCCClient, VCCClient, get_async_client, get_client
from .config import VCCConfig
from .errors import VCCError
from .gateway import UserAdminClient, get_user_admin_client
from .types import (
    CONSENT_VALUES,
    RECORDING_VALUES,
    AgentDetail,
    Availability,
    CallDetail,
    CallRequest,
    PlacedCall,
    VCCCallbackNumber,
    VCCGroup,
    VCCUser,
)
from .validation import validate_call_request

__all__ = [
    "CONSENT_VALUES",
    "RECORDING_VALUES",
    "AgentDetail",
    "AsyncVCCClient",
    "Availability",
    "CallDetail",
    "CallRequest",
    "PlacedCall",
    "UserAdminClient",
    "VCCCallbackNumber",
    "VCCClient",
    "VCCConfig",
    "VCCError",
    "VCCGroup",
    "VCCUser",
    "get_async_client",
    "get_client",
    "get_user_admin_client",
    "validate_call_request",
]

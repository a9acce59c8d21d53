"""Every error of the API as RFC 9457 `application/problem+json`: a `title`, the `status`, and a `detail` sentence
a developer can act on; validation errors add `errors`, each with where and what."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from calls.api.auth import MAX_BODY, BadLength, Forbidden, TooLarge
from calls.rules import SAY_WHY, Reused

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Server error",
    502: "VCC refused",
    503: "Unavailable",
}


class Problem(Exception):
    """Answer `status` with `detail` (and any extra members, e.g. VCC's own text)."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra


def problem(api: NinjaAPI, request: HttpRequest, status: int, detail: str, **extra: Any) -> HttpResponse:
    body = {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status, "detail": detail, **extra}
    response = api.create_response(request, body, status=status)
    response["Content-Type"] = PROBLEM
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="vccweb"'
    if status == 429 and "retry_after" in extra:
        response["Retry-After"] = str(extra["retry_after"])
    return response


def methods_as_problems(api: NinjaAPI, view: Callable[..., Any]) -> Callable[..., Any]:
    """`view` (a route of the API), with its 405 for a method it does not take answered as a problem."""

    def convert(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if response.status_code != 405 or response.get("Content-Type", "").startswith(PROBLEM):
            return response
        allowed = response.get("Allow", "")
        answer = problem(api, request, 405, f"This path takes {allowed or 'other methods'}, not {request.method}.")
        answer["Allow"] = allowed
        return answer

    if iscoroutinefunction(view):

        @functools.wraps(view)  # and its csrf_exempt: tokens, not cookies
        async def aview(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return convert(request, await view(request, *args, **kwargs))

        return aview

    @functools.wraps(view)  # and its csrf_exempt: tokens, not cookies
    def sview(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return convert(request, view(request, *args, **kwargs))

    return sview


def not_an_api_path(api: NinjaAPI) -> Callable[..., HttpResponse]:
    def not_found(request: HttpRequest, rest: str) -> HttpResponse:
        return problem(api, request, 404, "No such path in the API: see /api/v1/docs for the paths there are.")

    return not_found


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(part) for part in error.get("loc", ()))


def install(api: NinjaAPI) -> None:
    """Register the handlers on `api`."""

    @api.exception_handler(Problem)
    def on_problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        return problem(api, request, exc.status, exc.detail, **exc.extra)

    @api.exception_handler(ValidationError)
    def on_validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [{"where": _where(e), "what": str(e.get("msg", "invalid"))} for e in exc.errors]
        first = errors[0] if errors else {"where": "?", "what": "invalid"}
        # A malformed query parameter is a 400, as the lists' own checks answer it (paging.limit_of, the call
        # log's filters); 422 is for a body or path that is well formed but not acceptable.
        in_query = bool(errors) and all(e["where"].startswith("query.") for e in errors)
        return problem(api, request, 400 if in_query else 422, f"{first['where']}: {first['what']}", errors=errors)

    @api.exception_handler(AuthenticationError)
    def on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return problem(
            api,
            request,
            401,
            "Send a valid API token as 'Authorization: Bearer <token>'; it may be missing, revoked or expired.",
        )

    @api.exception_handler(Forbidden)
    def on_forbidden(request: HttpRequest, exc: Forbidden) -> HttpResponse:
        return problem(api, request, 403, exc.detail)

    @api.exception_handler(PermissionDenied)
    def on_permission(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return problem(api, request, 403, str(exc) or "Your role does not allow this.")

    @api.exception_handler(Http404)
    def on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem(api, request, 404, str(exc) or "There is nothing here, or not for you.")

    @api.exception_handler(RequestDataTooBig)
    @api.exception_handler(TooLarge)
    def on_too_big(request: HttpRequest, exc: Exception) -> HttpResponse:
        return problem(api, request, 413, f"The body may be at most {MAX_BODY // (1024 * 1024)} MB.")

    @api.exception_handler(Throttled)
    def on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        wait = f" Try again in {int(exc.wait)} s." if exc.wait else ""
        return problem(
            api,
            request,
            429,
            f"This token sent more requests this minute than vccweb allows (API_RATE_PER_MINUTE, and "
            f"API_CALL_RATE_PER_MINUTE for placing calls).{wait}",
        )

    @api.exception_handler(BadLength)
    def on_bad_length(request: HttpRequest, exc: BadLength) -> HttpResponse:
        return problem(api, request, 400, "Content-Length must be a number of bytes.")

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400 and str(exc.message).startswith("Cannot parse request body"):
            # django-ninja's words for a body its JSON parser refused (with the parser's error in DEBUG)
            return problem(api, request, 400, "The body is not valid JSON: send one JSON object, UTF-8 encoded.")
        return problem(api, request, exc.status_code, str(exc.message))

    @api.exception_handler(Exception)
    def on_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        log.exception("API %s %s failed", request.method, request.path)
        return problem(api, request, 500, "vccweb failed to answer; the error is logged with this request's id.")


def refusal_detail(refused: Exception) -> str:
    """The refusal as the Call button's person reads it, with the field that gives the reason named: "say why" is a
    box on the page, a field of the request here."""
    if isinstance(refused, Reused):  # the key sent again with another number: the page's words name a page
        return f"This Idempotency-Key placed call {refused.call_id} before; send a new key for a new call."
    words = str(refused)
    field = {"dnc": "reason", "hours": "hours_reason"}.get(getattr(refused.args[0], "asks", "") if refused.args else "")
    return words.replace(SAY_WHY, f"To call anyway, send `{field}` saying why") if field else words

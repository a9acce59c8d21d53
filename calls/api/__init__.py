"""The REST API at /api/v1/ (django-ninja): contacts, click-to-call and the call log for other systems, with
tokens (calls/api/auth.py), the same rules as the pages, and errors as RFC 9457 problems (calls/api/errors.py).

One router per area, each in its own module: contacts, calls, directory (agents, groups, callback numbers,
dispositions). The schema is at /api/v1/openapi.json, the docs at /api/v1/docs (django-ninja's Swagger UI,
served from its own static files: nothing from a CDN, no inline script)."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from ninja import NinjaAPI, Swagger

from calls.api import errors, limits
from calls.api.auth import TokenAuth


class _Docs(Swagger):
    """ninja's Swagger UI page with the Sandbox marker of every other page (templates/calls/api_docs.html)."""

    template = "calls/api_docs.html"


api = NinjaAPI(
    title="vccweb API",
    version="1",
    description="Contacts, click-to-call and the call log of vccweb. Authenticate with 'Authorization: Bearer "
    "<token>' (make one on your profile's API tokens page); a token acts as its owner, within its scopes.",
    auth=TokenAuth(),  # tokens only: no cookie is read, so there is nothing for CSRF to forge
    throttle=[limits.ALL],
    urls_namespace="api",
    docs=_Docs(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)
errors.install(api)


def _routers() -> None:
    from calls.api import calls, contacts, directory

    api.add_router("/contacts", contacts.router)
    api.add_router("/calls", calls.router)
    api.add_router("/", directory.router)


_routers()


def urls() -> tuple[list[Any], str, str]:
    """The API's URL patterns, answering what django-ninja answers outside an operation as problems too: a method
    a route does not take (405, with Allow) and a path under /api/v1/ that is none of the API's (404)."""
    patterns, app_name, namespace = api.urls
    wrapped = [
        URLPattern(p.pattern, errors.methods_as_problems(api, p.callback), p.default_args, p.name)
        if isinstance(p, URLPattern)
        else p
        for p in patterns
    ]
    wrapped.append(path("<path:rest>", errors.not_an_api_path(api), name="not_found"))
    return wrapped, app_name, namespace

"""Every page of the permission matrix carries the security headers, and no page shows a secret.

The pages come from tests/test_permission_matrix.py, so a page added there is checked here too.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from calls.vcc import get_client
from tests import _security
from tests.test_permission_matrix import MATRIX, _fill

sim, world, world_rows = _security.sim, _security.world, _security.world_rows  # fixtures

GET_ROWS = [row for row in MATRIX if row.method == "GET"]
HEADER_ROLES = ("anonymous", "agent", "admin")


def assert_security_headers(response, what: str) -> None:
    csp = response.get("Content-Security-Policy", "")
    assert csp, f"{what}: no Content-Security-Policy"
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, f"{what}: {csp}"
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    scripts = directives["script-src"].split()  # the nonce only where the page used it
    assert scripts[0] == "'self'" and all(s.startswith("'nonce-") for s in scripts[1:]), f"{what}: {csp}"
    assert directives["default-src"] == "'self'", f"{what}: {csp}"
    assert directives["object-src"] == "'none'", f"{what}: {csp}"
    assert directives["base-uri"] == "'none'", f"{what}: {csp}"
    assert directives["frame-ancestors"] == "'none'", f"{what}: {csp}"
    assert "*" not in csp, f"{what}: a wildcard source in {csp}"
    policy = response.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in policy, f"{what}: Permissions-Policy lacks {feature}: {policy!r}"
    assert response.get("X-Content-Type-Options") == "nosniff", what
    assert response.get("Referrer-Policy") == "same-origin", what
    assert response.get("X-Frame-Options") == "DENY", what
    assert response.get("Cross-Origin-Opener-Policy") == "same-origin", what


@pytest.mark.parametrize("row", GET_ROWS, ids=lambda row: row.id)
def test_every_page_carries_the_security_headers(row, world):
    path = _fill(row.path, world.ids())
    for role in HEADER_ROLES:
        response = world.client(role, raise_request_exception=False).get(path)
        assert_security_headers(response, f"GET {path} as {role} ({response.status_code})")


def test_error_pages_and_htmx_fragments_carry_them_too(world):
    client = world.client("agent", raise_request_exception=False)
    assert_security_headers(client.get("/no/such/page/"), "404")
    assert_security_headers(client.get("/health/"), "403")
    assert_security_headers(client.post("/agents/availability/"), "405")
    fragment = client.get(f"/contacts/{world.contact.pk}/", headers={"HX-Request": "true", "HX-Target": "timeline"})
    assert_security_headers(fragment, "timeline fragment")
    refused = world.client("agent", enforce_csrf_checks=True).post("/contacts/new/")
    assert refused.status_code == 403
    assert_security_headers(refused, "CSRF refusal")


def test_no_page_shows_a_secret(world, sim):
    with get_client() as client:  # a V0 bearer token now in the cache, as after any click
        client.agents_ready(["030"])
    bearer_tokens = list(sim.tokens)
    assert bearer_tokens
    admin_user = world.users["admin"]
    secrets = {
        "VCC API authentication token": settings.VCC_API_TOKEN,
        "VCC gateway client secret": settings.VCC_CLIENT_SECRET,
        "SECRET_KEY": settings.SECRET_KEY,
        "a password hash": admin_user.password,
        "a password hash's digest": admin_user.password.rsplit("$", 1)[-1],
        **{f"bearer token {n}": token for n, token in enumerate(bearer_tokens)},
    }
    assert all(len(secret) >= 8 for secret in secrets.values())
    shown = 0
    for row in GET_ROWS:
        path = _fill(row.path, world.ids())
        for role in ("supervisor", "admin"):
            response = world.client(role, raise_request_exception=False).get(path, follow=True)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            page = body.decode(errors="replace")
            shown += response.status_code == 200
            for name, secret in secrets.items():
                assert secret not in page, f"the {name} is on {path} (as {role})"
    assert shown > len(GET_ROWS)  # the pages rendered, not only login redirects
    health = world.client("admin").get("/health/").content.decode()
    assert health.count("set (hidden)") == 2  # the API token and the gateway client secret, masked


@pytest.mark.parametrize("row", GET_ROWS, ids=lambda row: row.id)
def test_every_page_and_export_is_private_and_never_stored(row, world):
    """Pages and exports show contacts, numbers and calls: no shared or browser cache may keep them."""
    path = _fill(row.path, world.ids())
    for role in ("agent", "supervisor", "admin"):
        response = world.client(role, raise_request_exception=False).get(path)
        directives = {d.strip() for d in response.get("Cache-Control", "").split(",")}
        assert {"private", "no-store"} <= directives, f"GET {path} as {role}: {response.get('Cache-Control')!r}"


def test_static_files_keep_their_long_caching(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert response["Cache-Control"].endswith("public")  # WhiteNoise's (hashed names are cached for ever in production)
    assert "no-store" not in response["Cache-Control"]

"""The security headers and privacy of the app's answers beyond the permission matrix's pages, which check them on
every answer to a GET (tests/test_permission_matrix.py: `_check_get_answer`)."""

from __future__ import annotations

from tests import _security
from tests._security import assert_security_headers

sim, world, world_rows = _security.sim, _security.world, _security.world_rows  # fixtures


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


def test_the_health_page_shows_that_the_secrets_are_set_not_what_they_are(world, sim):
    secrets = _security.secrets_a_page_could_show(world.users["admin"], sim)
    health = world.client("admin").get("/health/").content.decode()
    assert health.count("set (hidden)") == 2  # the API token and the gateway client secret, masked
    assert not [name for name, secret in secrets.items() if secret in health]


def test_static_files_keep_their_long_caching(client):
    response = client.get("/static/css/app.css")
    assert response.status_code == 200
    assert response["Cache-Control"].endswith("public")  # WhiteNoise's (hashed names are cached for ever in production)
    assert "no-store" not in response["Cache-Control"]

"""What admins set for calls in the admin (calls/admin/rules.py, calls/admin/directory.py): values that the calls
they are meant for will use, or a message that says what to fix."""

from __future__ import annotations

import pytest
from django.test import Client

from calls.calling import facts
from calls.models import ConsentRule

pytestmark = pytest.mark.django_db

CONSENT = "/admin/calls/consentrule/"


@pytest.fixture
def admin_client(admin_role_user) -> Client:
    client = Client()
    client.force_login(admin_role_user)
    return client


def test_a_consent_default_for_a_code_no_number_has_is_refused_saying_what_to_type(admin_client):
    """UK passes as two capitals, but numbers' country is GB: the default would never apply to a call."""
    response = admin_client.post(f"{CONSENT}add/", {"country": "UK", "consent": "TwoParty"})

    assert response.status_code == 200
    assert "UK is not a country code: use two letters, such as US or GB." in response.content.decode()
    assert not ConsentRule.objects.filter(country="UK").exists()


def test_a_consent_default_typed_in_lower_case_is_saved_and_used(admin_client):
    response = admin_client.post(f"{CONSENT}add/", {"country": "se ", "consent": "TwoParty"})

    assert response.status_code == 302, response.content.decode()
    assert facts.consent_rules()["SE"] == "TwoParty"

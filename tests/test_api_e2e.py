"""End to end over real sockets: a token made by `manage.py create_api_token` places a call through the running app
(pytest-django's live server) against vccsim in its own process, and reads it back, as another system would."""

from __future__ import annotations

import uuid
from io import StringIO

import httpx
import pytest
from django.core.management import call_command

from calls.models import Call, Contact
from tests._vccsim_process import start_vccsim
from tests.test_vcc_events_e2e import demo, sim  # noqa: F401  (fixtures: the demo account, vccsim as VCC)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def vccsim_server():
    yield from start_vccsim()


def test_a_token_places_a_call_through_the_running_app_and_reads_it_back(demo, sim, live_server):  # noqa: F811
    out = StringIO()
    call_command("create_api_token", "agent", "--scopes", "contacts:read,calls:read,calls:write", stdout=out)
    token = out.getvalue().strip().splitlines()[-1].split()[-1]
    contact = Contact.objects.filter(do_not_call=False, phones__is_primary=True, phones__do_not_call=False).first()
    number = contact.phones.get(is_primary=True).number
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}

    with httpx.Client(base_url=f"{live_server.url}/api/v1", headers=headers, timeout=15, trust_env=False) as api:
        placed = api.post("/calls", json={"to": number, "contact": contact.pk})
        again = api.post("/calls", json={"to": number, "contact": contact.pk})  # the same key: the same answer
        read = api.get(f"/calls/{placed.json()['id']}")
        found = api.get("/contacts", params={"q": contact.name.split()[0]})

    assert placed.status_code == 201, placed.text
    assert again.status_code == 201 and again.json() == placed.json()
    assert Call.objects.count() == 1 and sim.state()["callsPlaced"] == 1  # VCC was asked once
    call = read.json()
    assert read.status_code == 200 and call["id"] == placed.json()["id"] and call["contact"] == contact.pk
    assert call["vcc_call_id"] and call["state"] in ("live", "ended")
    assert found.status_code == 200 and contact.pk in [c["id"] for c in found.json()["items"]]

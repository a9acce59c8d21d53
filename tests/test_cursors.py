"""A page link's cursor that is damaged, or holds what PostgreSQL cannot store or compare (a NUL, a lone surrogate,
an integer beyond 64 bits, a time beyond the calendar), is a 400 with a sentence on every keyset-paged list, never
a 500: the contact list, the call log and the contact's timeline ("Show older calls")."""

from __future__ import annotations

import base64
import json

import pytest

from tests._calls import make_call

pytestmark = pytest.mark.django_db


def cursor(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


CONTACT_CURSORS = [
    ("name", "WyJcdTAwMDAiLCAxXQ"),  # the probe's: ["\u0000", 1]
    ("name", cursor(["Grace\u0000", 1])),
    ("name", cursor(["\ud800", 1])),  # a lone surrogate: not UTF-8
    ("name", cursor(["Grace", 2**63])),
    ("name", cursor(["Grace", -(2**63) - 1])),
    ("name", cursor(["Grace", 10**40])),
    ("name", cursor(["Grace", True])),
    ("name", cursor(["Grace", 1.5])),
    ("name", cursor([1, 1])),
    ("name", cursor([["Grace"], 1])),
    ("name", cursor({"name": "Grace"})),
    ("name", cursor(["Grace"])),
    ("company", cursor(["Cobalt", "Grace\u0000", 1])),
    ("company", cursor(["Cobalt", None, 1])),
    ("last_called", cursor(["9999-12-31T23:59:59-14:00", 1])),  # past year 9999 in UTC
    ("last_called", cursor(["0001-01-01T00:00:00+14:00", 1])),  # before year 1 in UTC
    ("last_called", cursor(["2026-02-30T10:00:00+00:00", 1])),
    ("last_called", cursor(["2026-03-02T10:00:00", 1])),  # no time zone
    ("created", cursor(["2026-03-02T10:00:00+00:00\u0000", 1])),
    ("created", cursor([None, 1])),
    ("created", cursor(["2026-03-02T10:00:00+00:00", 2**64])),
    ("name", "not base64!"),
    ("name", base64.urlsafe_b64encode(b"\xff\xfe").decode()),
    ("name", cursor(float("nan"))),
    ("name", base64.urlsafe_b64encode(b"[" * 1400).decode()),  # nested deeper than json reads
]


@pytest.mark.parametrize(("sort", "after"), CONTACT_CURSORS)
def test_a_damaged_contact_list_cursor_is_a_400_with_a_sentence(agent_client, contact, sort, after):
    response = agent_client.get("/contacts/", {"sort": sort, "after": after})
    assert response.status_code == 400
    assert "That page link is damaged" in response.content.decode()
    assert [c.name for c in response.context["contacts"]] == ["Grace Hopper"]  # and the first page, to go on from


@pytest.mark.parametrize(
    "sort",
    ["name", "company", "last_called", "created"],
)
def test_a_sound_cursor_at_the_edges_of_what_postgresql_stores_pages_on(agent_client, contact, sort):
    edges = {
        "name": ["\U0010ffff", 2**63 - 1],
        "company": ["", "Grace", -(2**63)],
        "last_called": ["0001-01-01T00:00:00+00:00", 2**63 - 1],
        "created": ["9999-12-31T23:59:59+00:00", 1],
    }
    response = agent_client.get("/contacts/", {"sort": sort, "after": cursor(edges[sort])})
    assert response.status_code == 200


CALL_CURSORS = [
    "1_2\u0000",
    "\u00001_2",
    "99999999999999999999_1",
    "1_99999999999999999999",
    "-2_1",
    "1.5_1",
    "1_",
    "²_1",
    "1_2_3",
    "x" * 60,
]


@pytest.mark.parametrize("after", CALL_CURSORS)
@pytest.mark.parametrize("sort", ["-time", "duration"])
def test_a_damaged_call_log_cursor_is_a_400_with_a_sentence(supervisor_client, after, sort):
    for position in ("after", "before"):
        response = supervisor_client.get("/calls/", {"sort": sort, position: after})
        assert response.status_code == 400
        assert "Some filters could not be read" in response.content.decode()


@pytest.mark.parametrize("older", CALL_CURSORS)
def test_a_damaged_show_older_calls_link_is_a_400_with_the_newest_calls(agent_client, agent_user, contact, older):
    make_call(user=agent_user, contact=contact, notes="the newest")
    response = agent_client.get(f"/contacts/{contact.pk}/", {"older": older})
    assert response.status_code == 400
    html = response.content.decode()
    assert "That link to older calls is damaged" in html
    assert "the newest" in html

"""/audit/ (calls/views/audit.py): admins only, each entry with its person and its values before and after,
filters by person, object, kind and dates, keyset pages; read only; the contact's and the call's History links."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client

from calls import audit
from calls.models import AuditEntry, Call
from tests.conftest import create_contact

pytestmark = pytest.mark.django_db

URL = "/audit/"
needs_triggers = pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")


def page(client: Client, **params) -> str:
    response = client.get(URL, params)
    assert response.status_code == 200, response.content.decode()[:500]
    return response.content.decode()


def many(count: int, *, start: datetime, **fields) -> list[AuditEntry]:
    """count entries a minute apart from start, oldest first."""
    rows = [
        AuditEntry(at=start + timedelta(minutes=i), kind="login", object_type="user", object_id=str(i), **fields)
        for i in range(count)
    ]
    return AuditEntry.objects.bulk_create(rows)


def test_agents_and_supervisors_are_refused_and_anonymous_people_sent_to_log_in(agent_client, supervisor_client):
    assert agent_client.get(URL).status_code == 403
    assert supervisor_client.get(URL).status_code == 403
    response = Client().get(URL)
    assert response.status_code == 302 and "/login/" in response.url
    assert "Audit</a>" not in supervisor_client.get("/contacts/").content.decode()


@needs_triggers
def test_it_shows_who_and_the_values_before_and_after(admin_role_client, agent_user):
    contact = create_contact()
    with audit.acting(user_id=agent_user.pk, request_id="req-page-000001"):
        contact.company = "Brightwater Energy"
        contact.save()
    html = page(admin_role_client)
    assert "Audit</a>" in html  # the navigation's link
    entry = AuditEntry.objects.get(kind="contact.update")
    row = html.split(f'data-entry="{entry.pk}"')[1].split("</tr>")[0]
    assert '<td data-label="Who">alex</td>' in row
    assert "<del>Cobalt Dental</del> → <ins>Brightwater Energy</ins>" in row and "req-page-000001" in row
    assert f'href="/contacts/{contact.pk}/"' in row


@needs_triggers
def test_it_filters_by_person_kind_object_contact_and_dates(admin_role_client, agent_user, supervisor_user):
    contact = create_contact()
    other = create_contact()
    with audit.acting(user_id=agent_user.pk, request_id="req-filter-0001"):
        contact.notes = "by alex"
        contact.save()
    with audit.acting(user_id=supervisor_user.pk, request_id="req-filter-0002"):
        other.notes = "by priya"
        other.save()
        phone = contact.phones.first()
        phone.label = "home"
        phone.save()
    assert "by alex" in page(admin_role_client, person="alex") and "by priya" not in page(
        admin_role_client, person="alex"
    )
    assert "by priya" in page(admin_role_client, person="priya", kind="contact.update")
    assert "No entries match" in page(admin_role_client, person="nobody-of-that-name")
    by_object = page(admin_role_client, type="contact", id=str(other.pk))
    assert "by priya" in by_object and "by alex" not in by_object
    history = page(admin_role_client, contact=str(contact.pk))  # the contact and its numbers
    assert "by alex" in history and "number.update" in history and "by priya" not in history
    today = datetime.now(UTC).date()
    assert "by alex" in page(admin_role_client, since=today.isoformat(), until=today.isoformat())
    assert "No entries match" in page(admin_role_client, until=(today - timedelta(days=3)).isoformat())


def test_it_pages_by_keyset_newest_first_without_repeating_or_skipping(admin_role_client):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = many(120, start=start)
    same_moment = AuditEntry.objects.bulk_create(
        [AuditEntry(at=start + timedelta(minutes=60), kind="login", object_id=f"tie{i}") for i in range(3)]
    )
    expected = sorted(made + same_moment, key=lambda e: (e.at, e.pk), reverse=True)
    seen: list[int] = []
    params: dict[str, str] = {"until": "2026-01-01"}  # not the entries of today's logins and fixtures
    for _ in range(10):
        response = admin_role_client.get(URL, params)
        html = response.content.decode()
        seen += [int(chunk.split('"')[0]) for chunk in html.split('data-entry="')[1:]]
        if 'rel="next"' not in html:
            break
        link = html.split('rel="next"')[0].rsplit('href="/audit/?', 1)[1].split('"')[0]
        params = dict(pair.split("=", 1) for pair in link.split("&amp;"))
    assert seen == [e.pk for e in expected]


def test_a_page_is_one_query_by_one_index(admin_role_client, django_assert_max_num_queries):
    many(60, start=datetime(2026, 1, 1, tzinfo=UTC))
    admin_role_client.get(URL)  # the session and permissions cached
    with django_assert_max_num_queries(4):
        admin_role_client.get(URL, {"kind": "login"})


def test_a_damaged_page_link_is_a_400_that_says_so(admin_role_client):
    response = admin_role_client.get(URL, {"after": "not-a-cursor"})
    assert response.status_code == 400 and "That page link is damaged" in response.content.decode()
    assert admin_role_client.get(URL, {"after": "99999999999999999999_1"}).status_code == 400


def test_nobody_can_change_or_delete_an_entry_through_the_app(admin_role_client):
    assert admin_role_client.post(URL, {"kind": "login"}).status_code == 405
    assert not admin.site.is_registered(AuditEntry)
    # The admin role sees entries; no role may add, change or delete them.
    codenames = Permission.objects.filter(content_type__model="auditentry").values_list("codename", flat=True)
    assert list(codenames) == ["view_auditentry"]


def test_the_contact_and_call_pages_link_to_their_history_for_admins(admin_role_client, agent_client, agent_user):
    contact = create_contact()
    call = Call.objects.create(contact=contact, to_number="+447400123456", created_by=agent_user)
    assert f'href="/audit/?contact={contact.pk}"' in admin_role_client.get(f"/contacts/{contact.pk}/").content.decode()
    assert f"/audit/?type=call&amp;id={call.pk}" in admin_role_client.get(f"/calls/{call.pk}/").content.decode()
    assert "/audit/" not in agent_client.get(f"/contacts/{contact.pk}/").content.decode()


@needs_triggers
def test_a_calls_history_shows_its_wrap_up_changes(admin_role_client, agent_user):
    call = Call.objects.create(to_number="+447400123456", created_by=agent_user)
    with audit.acting(user_id=agent_user.pk, request_id="req-call-hist-1"):
        Call.objects.filter(pk=call.pk).update(disposition_code="Interested", notes="Call back on Monday")
    html = page(admin_role_client, type="call", id=str(call.pk))
    assert "call.update" in html and "Call back on Monday" in html and "req-call-hist-1" in html


@needs_triggers
def test_a_role_given_shows_the_roles_name(admin_role_client, admin_role_user):
    from calls.roles import SUPERVISOR, assign_role
    from tests.conftest import create_user

    with audit.acting(user_id=admin_role_user.pk, request_id="req-role-00001"):
        assign_role(create_user("newbie"), SUPERVISOR)
    html = page(admin_role_client, kind="role.create")
    assert "<dt>role</dt>" in html and "<ins>supervisor</ins>" in html


def test_the_kind_filter_offers_every_kind_the_app_records():
    """Each `record("kind", …)` and audited export in the app's code: a kind missing from the filter cannot be
    looked for (an erasure, a subject's export, a queue's export were not)."""
    import re
    from pathlib import Path

    from calls.audit.trail import KINDS

    recorded = set()
    for path in Path(audit.__file__).parents[1].rglob("*.py"):
        text = path.read_text()
        recorded |= set(re.findall(r'\brecord\(\s*"([a-z_.]+)"', text))
        recorded |= set(re.findall(r'kind="(export\.[a-z_]+)"', text))
    assert {"contact.erased", "export.subject", "export.queue", "login"} <= recorded  # the patterns still find them
    assert recorded <= set(KINDS), sorted(recorded - set(KINDS))


def test_an_erasure_is_found_by_its_kind(admin_role_client):
    audit.record("contact.erased", object_type="contact", object_id=7, contact_id=7, after={"calls": 2})

    page = admin_role_client.get(URL, {"kind": "contact.erased"}).content.decode()

    assert "contact.erased" in page and "Select a valid choice" not in page


def test_a_filter_that_cannot_be_read_is_named_by_its_label_with_what_to_do(admin_role_client):
    response = admin_role_client.get(URL, {"since": "2026-13-45", "kind": "nothing.such", "contact": "x"})
    assert response.status_code == 400
    problems = re.findall(r"<li>([^<]*)</li>", response.content.decode())
    assert any(p.startswith("From: Enter a valid date") for p in problems), problems
    assert any(p.startswith("What: Select a valid choice") for p in problems), problems
    assert any(p.startswith("Contact: ") and "follow it again" in p for p in problems), problems
    assert not any(p.startswith(("since:", "kind:", "contact:")) for p in problems)

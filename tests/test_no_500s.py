"""No input causes a 500: every form and every query parameter, fed arbitrary text by hypothesis.

Each value is drawn from a mix of valid choices and hostile text: NUL characters (PostgreSQL refuses them),
digits Python reads but int() does not ("²".isdigit() is true), other scripts' digits, huge strings, and any
Unicode. Every request runs as a person in a role would send it, inside a rolled-back savepoint so examples do not
see each other's rows. VCC is the in-process simulator (sandbox mode): nothing leaves the machine.

A request that raises fails the test with its traceback (the test client re-raises); any 5xx answer fails too.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.models import Call
from tests import _security
from tests._sim import HTMX, click, primary

sim, world, world_rows = _security.sim, _security.world, _security.world_rows  # fixtures

EXAMPLES = 10
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written to the worktree; a failure prints the example that reproduces it
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

few = settings(fuzz, max_examples=6)  # for tests that send several requests per example

HOSTILE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "1\x00",
    "²",
    "1²",
    "¹²³",
    "١٢٣",  # Arabic-Indic digits: str.isdecimal() and int() accept them
    "𝟏𝟐",  # mathematical digits: also decimal
    "-1",
    "0",
    "1.5",
    "1e3",
    "9" * 19,  # past a 64-bit integer
    "9" * 400,
    "None",
    "true",
    "on",
    "[]",
    "%",
    "_",
    "\\",
    "'",
    '"',
    "<script>window.__xss=1</script>",
    "\u202e\ufeff\u200b",
    "🙂",
    "x" * 70_000,
]


def hostile_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.text(max_size=40),
        st.text(st.characters(max_codepoint=0x7F), max_size=20),
        st.builds(lambda s, n: s * n, st.text(min_size=1, max_size=4), st.integers(1_000, 30_000)),
    )


def field(*valid: object) -> st.SearchStrategy[str]:
    """A form field's value: one of the valid ones, or anything at all."""
    return st.one_of(st.sampled_from([str(v) for v in valid]), hostile_text()) if valid else hostile_text()


def several(*valid: object) -> st.SearchStrategy[list[str]]:
    """Values sent under one name several times (ticked checkboxes)."""
    return st.lists(field(*valid), max_size=3)


htmx_headers = st.sampled_from([{}, HTMX, {**HTMX, "HX-Target": "dialer"}, {**HTMX, "HX-Target": "list-call"}])


def answer(client: Client, method: str, path: str, data=None, headers=None) -> int:
    """Send the request in a savepoint that is rolled back; fail on a 5xx."""
    with transaction.atomic():
        if method == "GET":
            response = client.get(path, data or {}, headers=headers or {})
        else:
            response = client.post(path, data or {}, headers=headers or {})
        transaction.set_rollback(True)
    assert response.status_code < 500, f"{method} {path} {data!r} answered {response.status_code}"
    return response.status_code


@pytest.fixture
def clients(world):
    return {role: world.client(role) for role in ("anonymous", "agent", "supervisor", "admin")}


# --- Query parameters ----------------------------------------------------------------------------------


@fuzz
@given(
    q=field("Grace", "+44 7400 123456", "020", "cobalt"),
    after=field("1", "name~Grace~1"),
    sort=field("name", "company", "last_called", "created"),
    company=field("Cobalt Dental"),
    dnc=field("only", "none"),
    mine=field("1", "on", ""),
)
def test_contact_search_sorts_filters_and_paging(clients, q, after, sort, company, dnc, mine):
    query = {"q": q, "after": after, "sort": sort, "company": company, "dnc": dnc, "mine": mine}
    answer(clients["agent"], "GET", "/contacts/", query)


def test_contact_search_with_a_nul_character_is_not_a_500(clients):
    answer(clients["agent"], "GET", "/contacts/", {"q": "gr\x00ace"})


@fuzz
@given(groups=several(), clid=field(), ticked=field("1", "on", ""), headers=htmx_headers)
def test_dial_preview(clients, world, groups, clid, ticked, headers):
    groups = groups or [str(world.group.pk)]
    data = {"groups": groups, "clid": clid or str(world.number.pk), "ticked": ticked}
    for role in ("agent", "supervisor"):
        answer(clients[role], "GET", f"/contacts/{world.contact.pk}/dial-preview/", data, headers)


@fuzz
@given(groups=several(), headers=htmx_headers)
def test_readiness(clients, world, groups, headers):
    for role in ("agent", "supervisor"):
        answer(clients[role], "GET", "/readiness/", {"groups": [*groups, str(world.group.pk)]}, headers)


@fuzz
@given(edit=field("1", "0"), headers=htmx_headers)
def test_call_panel_edit(clients, world, edit, headers):
    for role in ("agent", "supervisor"):
        answer(clients[role], "GET", f"/calls/{world.call.pk}/panel/", {"edit": edit}, headers)


@few
@given(token=field())
def test_call_links_on_the_contact_page_and_the_agent_directory(clients, world, token):
    from calls import calling

    good = calling.regarding_token(world.call)
    for value in (token, good + token, good[: len(good) // 2] + token):
        answer(clients["agent"], "GET", f"/contacts/{world.contact.pk}/", {"call": value})
        answer(clients["agent"], "GET", "/agents/", {"call": value})


@fuzz
@given(next_url=field("/contacts/", "//evil.example.com/", "javascript:alert(1)"))
def test_login_page_next(clients, next_url):
    answer(clients["anonymous"], "GET", "/login/", {"next": next_url})


# --- Forms ---------------------------------------------------------------------------------------------


@fuzz
@given(username=field("alex", "ALEX"), password=field(), next_url=field("/contacts/", "//evil.example.com/"))
def test_login_form(clients, username, password, next_url):
    answer(clients["anonymous"], "POST", "/login/", {"username": username, "password": password, "next": next_url})


def contact_form(world, draw_values: dict[str, str]) -> dict[str, object]:
    return {
        "phones-TOTAL_FORMS": "2",
        "phones-INITIAL_FORMS": "0",
        "phones-MIN_NUM_FORMS": "0",
        "phones-MAX_NUM_FORMS": "1000",
        **draw_values,
    }


contact_fields = st.fixed_dictionaries(
    {
        "name": field("Ada Lovelace"),
        "company": field("Analytical Engines"),
        "email": field("ada@example.com", "a@b"),
        "owner": field(""),
        "do_not_call": field("on", ""),
        "consent_override": field("", "OneParty", "TwoParty", "Unknown"),
        "notes": field("Prefers mornings"),
        "phones-0-label": field("mobile", "work", "other"),
        "phones-0-number": field("+44 20 7946 0999", "020 7946 0999", "(312) 555-0100", "+1"),
        "phones-0-is_primary": field("on", ""),
        "phones-0-do_not_call": field("on", ""),
        "phones-1-label": field("home"),
        "phones-1-number": field("07700 900123", "+447700900123"),
        "phones-1-DELETE": field("on", ""),
    },
    optional={
        "phones-TOTAL_FORMS": field("1", "2", "1000000"),
        "phones-INITIAL_FORMS": field("0", "1"),
        "phones-0-id": field(""),
    },
)


@fuzz
@given(values=contact_fields)
def test_contact_create_form(clients, world, values):
    for role in ("agent", "supervisor"):
        answer(clients[role], "POST", "/contacts/new/", contact_form(world, values))


@fuzz
@given(values=contact_fields, phone_id=field())
def test_contact_edit_form(clients, world, values, phone_id):
    phones = list(world.contact.phones.order_by("pk"))
    data = {
        **contact_form(world, values),
        "phones-INITIAL_FORMS": values.get("phones-INITIAL_FORMS", "2"),
        "phones-TOTAL_FORMS": values.get("phones-TOTAL_FORMS", "3"),
        "phones-0-id": phone_id or str(phones[0].pk),
        "phones-1-id": str(phones[1].pk),
        "phones-2-number": values["phones-0-number"],
    }
    for role in ("agent", "supervisor"):
        answer(clients[role], "POST", f"/contacts/{world.contact.pk}/edit/", data)


def fill(value: str, world) -> str:
    """Valid choices name the world's rows by placeholder; a fresh click id for NEW."""
    ids = {"PHONE": world.phone.pk, "GROUP": world.group.pk, "CLID": world.default_number.pk}
    for placeholder, pk in ids.items():
        value = value.replace(placeholder, str(pk))
    return value.replace("NEW", str(uuid.uuid4()))


def test_a_contact_form_claiming_a_million_numbers_is_refused_without_building_them(clients, world):
    phones = list(world.contact.phones.order_by("pk"))
    data = {
        "name": "Grace Hopper",
        "phones-TOTAL_FORMS": "1000000",
        "phones-INITIAL_FORMS": "2",
        "phones-MIN_NUM_FORMS": "0",
        "phones-MAX_NUM_FORMS": "1000000",
        "phones-0-id": str(phones[0].pk),
        "phones-1-id": str(phones[1].pk),
    }
    response = clients["agent"].post(f"/contacts/{world.contact.pk}/edit/", data)
    assert response.status_code == 200
    assert "Please submit at most 20 forms." in response.content.decode()
    assert len(response.content) < 100_000  # it was 2.4 MB (2,000 forms) and took 25 s
    assert response.content.decode().count('name="phones-') < 20 * 8


@fuzz
@given(
    request_id=field("NEW"),
    call=field("me:PHONE", "group:PHONE", "me:PHONE²", "me:", "group:0", "me:PHONE:PHONE"),
    groups=several("GROUP"),
    clid=field("", "CLID"),
    reason=field("They asked us to call back"),
    reason_for=field("PHONE"),
    headers=htmx_headers,
)
def test_click_form(clients, world, request_id, call, groups, clid, reason, reason_for, headers):
    data = {
        "request_id": fill(request_id, world),
        "call": fill(call, world),
        "groups": [fill(g, world) for g in groups],
        "clid": fill(clid, world),
        f"dnc_reason_{fill(reason_for, world)}": reason,
    }
    for role in ("agent", "supervisor"):
        answer(clients[role], "POST", f"/contacts/{world.contact.pk}/call/", data, headers)


@fuzz
@given(request_id=field("NEW"), headers=htmx_headers)
def test_agent_call_form(clients, world, request_id, headers):
    answer(
        clients["agent"], "POST", f"/agents/{world.agent.pk}/call/", {"request_id": fill(request_id, world)}, headers
    )


@pytest.fixture
def live_call(world, clients, sim) -> Call:
    Call.objects.filter(pk=world.live_call.pk).update(state=Call.State.ENDED)  # one live call per agent at a time
    assert click(clients["agent"], primary(world.contact)).status_code == 200
    return Call.objects.filter(state=Call.State.LIVE).exclude(vcc_call_id="").get()


@fuzz
@given(recording=field("Paused", "Started"), headers=htmx_headers)
def test_recording_form(clients, live_call, recording, headers):
    answer(clients["agent"], "POST", f"/calls/{live_call.pk}/recording/", {"recording": recording}, headers)


@fuzz
@given(disposition=field(), notes=field("Wants a quote"), headers=htmx_headers)
def test_wrapup_form(clients, world, disposition, notes, headers):
    data = {"disposition": disposition or str(world.disposition.pk), "notes": notes}
    answer(clients["agent"], "POST", f"/calls/{world.call.pk}/wrapup/", data, headers)


# --- The admin's forms and lists -----------------------------------------------------------------------


@few
@given(q=field("Grace", "+44"), other=field())
def test_admin_search_and_filters(clients, q, other):
    admin = clients["admin"]
    for model in ("contact", "contactphone", "agent", "agentgroup", "callbacknumber", "call", "syncrun"):
        answer(admin, "GET", f"/admin/calls/{model}/", {"q": q, "o": other, "p": other, "e": other})
    answer(admin, "GET", "/admin/calls/contact/", {"owner__id__exact": other, "do_not_call__exact": other})
    answer(admin, "GET", "/admin/calls/call/", {"state__exact": other, "requested_at__year": other})


def test_every_admin_search_reads_a_bounded_term():
    from django.contrib import admin

    from calls.admin import BoundedSearch

    unbounded = [type(a).__name__ for a in admin.site._registry.values() if not isinstance(a, BoundedSearch)]
    assert not unbounded, f"admins whose search is not bounded (add BoundedSearch): {unbounded}"


def test_an_admin_search_of_thousands_of_words_answers_at_once(clients, django_assert_max_num_queries):
    words = " ".join(["µ", "$"] * 20_000)
    for model in ("calls/contact", "calls/contactphone", "calls/call", "auth/user", "auth/group"):
        for q in (words, "gr\x00ace"):
            with django_assert_max_num_queries(30):
                response = clients["admin"].get(f"/admin/{model}/", {"q": q})
            assert response.status_code == 200
            assert response.content.count(b"\xc2\xb5") < 200  # searched for (and shown) at most 100 characters


@fuzz
@given(
    number=field("020 7946 0555", "+1 312 555 0100"),
    label=field("Leeds"),
    flags=st.lists(st.sampled_from(["is_active", "is_default", "local_presence"]), unique=True),
    vcc_id=field(""),
)
def test_admin_callback_number_form(clients, number, label, flags, vcc_id):
    data = {"number": number, "label": label, "vcc_callback_number_id": vcc_id, **dict.fromkeys(flags, "on")}
    answer(clients["admin"], "POST", "/admin/calls/callbacknumber/add/", data)


@fuzz
@given(
    display_id=field("1099"),
    name=field("Sam Lee"),
    new_username=field("sam"),
    new_password=field("a long enough password 42"),
    role=field("agent", "supervisor", "admin", ""),
    groups=several(),
    number=field(""),
)
def test_admin_agent_form(clients, world, display_id, name, new_username, new_password, role, groups, number):
    data = {
        "display_id": display_id,
        "name": name,
        "is_active": "on",
        "new_username": new_username,
        "new_email": "",
        "new_password": new_password,
        "role": role,
        "groups": groups or [str(world.group.pk)],
        "default_callback_number": number,
        "default_group": "",
    }
    answer(clients["admin"], "POST", "/admin/calls/agent/add/", data)


@fuzz
@given(action=st.sampled_from(["preview", "apply", "other"]), value=field())
def test_admin_sync_run_form(clients, action, value):
    answer(clients["admin"], "POST", "/admin/calls/syncrun/run/", {action: value})


# --- The call log, its export, reports, and the contacts' import and export ------------------------------------


@few
@given(
    start=field("2026-01-01"),
    end=field("2026-12-31"),
    outcome=field("answered", "busy", "not_confirmed"),
    agent=field("1"),
    after=field("1764000000000000_5", "-1_3"),
    sort=field("-time", "duration"),
    extra=st.tuples(field("1"), field("5"), field("HTTP 500"), field("500")),
    more=st.tuples(
        field("1"),
        field("agent", "group"),
        field("Interested", "-"),
        field("+442079460100", "-"),
        field("on", ""),
        field("1764000000000000_5"),
        field("yes", "no"),
    ),  # fmt: skip
)
def test_call_log_and_its_export(clients, start, end, outcome, agent, after, sort, extra, more):
    contact, hour, error, status = extra
    group, via, disposition, clid, wrap_up, before, has_error = more
    query = {
        "start": start, "end": end, "outcome": outcome, "agent": agent, "after": after, "sort": sort,
        "contact": contact, "hour": hour, "error": error, "error_status": status, "has_error": has_error,
        "group": group, "via": via, "disposition": disposition, "clid": clid, "wrap_up": wrap_up, "before": before,
    }  # fmt: skip
    for role in ("agent", "supervisor"):
        for path in ("/calls/", "/calls/export.csv"):
            answer(clients[role], "GET", path, query)


@fuzz
@given(start=field("2026-01-01"), end=field("2026-12-31"), agent=field("1"), group=field("1"))
def test_reports(clients, start, end, agent, group):
    answer(clients["supervisor"], "GET", "/reports/", {"start": start, "end": end, "agent": agent, "group": group})


@fuzz
@given(
    data=st.one_of(
        st.binary(max_size=2000),
        st.sampled_from([b"Name,Phone\n=cmd,\xb2\x00\n", b"\xff\xfe\x00N\x00a", b"Name\n" + b"x," * 5000]),
    ),
    pasted=field("Name,Phone\nAda,020 7946 0000"),
)
def test_contact_import_upload_and_paste(clients, data, pasted):
    from django.core.files.uploadedfile import SimpleUploadedFile

    answer(clients["agent"], "POST", "/contacts/import/", {"file": SimpleUploadedFile("c.csv", data)})
    answer(clients["agent"], "POST", "/contacts/import/", {"text": pasted})


@pytest.fixture
def an_import(clients, settings):
    """An import of the agent's in its preview: two rows, the second a duplicate of the first."""
    from calls.models import ContactImport

    settings.CONTACT_IMPORT_BACKGROUND = False  # checked in the request: a thread would not see the test's rows
    text = "Name,Phone,Email\nAda Lovelace,020 7946 0001,ada@example.com\nAda L,020 7946 0001,\n"
    response = clients["agent"].post("/contacts/import/", {"text": text})
    assert response.status_code == 302, response.status_code
    return ContactImport.objects.get(pk=response.url.rstrip("/").split("/")[-1])


@fuzz
@given(columns=st.dictionaries(st.sampled_from(["name", "phone", "email", "company", "label"]), field("0", "1", "2")))
def test_contact_import_mapping(clients, an_import, columns):
    answer(clients["agent"], "POST", f"/contacts/import/{an_import.pk}/mapping/", columns)


@fuzz
@given(cells=st.tuples(field("Ada"), field("020 7946 0002"), field("a@b.c")), row=st.sampled_from([2, 3]))
def test_contact_import_fix(clients, an_import, cells, row):
    data = {f"r{row}-c{i}": cell for i, cell in enumerate(cells)}
    answer(clients["agent"], "POST", f"/contacts/import/{an_import.pk}/fix/{row}/", data)


@fuzz
@given(decision=field("skip", "update"), rest=field("skip", "update", ""), name=field("dup_3", "dup_2"))
def test_contact_import_confirm(clients, an_import, decision, rest, name):
    answer(clients["agent"], "POST", f"/contacts/import/{an_import.pk}/confirm/", {name: decision, "rest": rest})


def test_an_admin_date_drill_down_beyond_any_calendar_is_not_a_500(clients):
    for path in ("/admin/calls/call/", "/admin/calls/contact/"):
        field = "requested_at" if "call/" in path else "created_at"
        answer(clients["admin"], "GET", path, {f"{field}__year": "9" * 30, f"{field}__month": "1"})

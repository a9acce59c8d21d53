"""The API's contacts (calls/api/contacts.py): the list's search by cursor, read, create, change, delete and upsert,
with the pages' rules for numbers, do-not-call and roles."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from calls.forms import encode_cursor
from calls.models import ApiToken, Contact, ContactPhone
from tests.conftest import create_contact, create_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts"
SHAPE = {
    "id",
    "name",
    "company",
    "email",
    "notes",
    "external_id",
    "do_not_call",
    "owner",
    "phones",
    "created_at",
    "updated_at",
    "last_called_at",
    "url",
}


class Api:
    """A client that sends one person's token."""

    def __init__(self, user, scopes=("contacts:read", "contacts:write")):
        self.user = user
        _, self.token = ApiToken.issue(user, name="test", scopes=list(scopes))
        self.client = Client(headers={"Authorization": f"Bearer {self.token}"})

    def get(self, path, **params):
        return self.client.get(path, params)

    def send(self, method, path, body):
        data = body if isinstance(body, str) else json.dumps(body)
        return getattr(self.client, method)(path, data, content_type="application/json")


@pytest.fixture
def agent():
    return Api(create_user("api-agent", "agent"))


@pytest.fixture
def supervisor():
    return Api(create_user("api-supervisor", "supervisor"))


def problem(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


# The list.


def test_the_cursor_walks_every_contact_once_in_order(agent):
    names = [f"Walker {letter}" for letter in "GFEDCBA"]
    for name in names:
        Contact.objects.create(name=name)

    seen, url, pages = [], f"{URL}?limit=3", 0
    while url:
        response = agent.client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert len(body["items"]) <= 3 and "count" not in body
        seen += [item["name"] for item in body["items"]]
        url, pages = body["next"], pages + 1

    assert seen == sorted(names) and pages == 3


def test_a_search_finds_what_the_pages_search_finds(agent):
    create_contact()  # Grace Hopper, Cobalt Dental, +447400123456 and +442079460123
    other = Contact.objects.create(name="Ada Lovelace", company="Analytical Engines", email="ada@example.org")
    ContactPhone.objects.create(contact=other, number="+447700900020", is_primary=True)
    Contact.objects.create(name="Room 101 Ltd", company="Brightwater Energy")
    page = Client()
    page.force_login(agent.user)

    for q in ["hopper", "grace cobalt", "020 7946", "0123", "+44 7700", "020", "7946", "room 101", "example", "zzz"]:
        shown = [c.pk for c in page.get("/contacts/", {"q": q}).context["contacts"]]
        found = [item["id"] for item in agent.get(URL, q=q).json()["items"]]
        assert found == shown, q
    assert [i["name"] for i in agent.get(URL, q="020 7946").json()["items"]] == ["Grace Hopper"]
    assert agent.get(URL, q="7946").json()["items"] == []  # never in the middle of a number


@pytest.mark.parametrize("typed", ["+44 (0)20 7946 0123", "0044 (0) 20 7946"])
def test_a_number_typed_with_its_trunk_zero_in_brackets_is_found_as_on_the_page(agent, typed):
    grace = create_contact()
    body = agent.get(URL, q=typed).json()
    assert [item["id"] for item in body["items"]] == [grace.pk]


@pytest.mark.parametrize("typed", ["Hopper, Grace", "hopper;grace", "Cobalt, Hopper"])
def test_commas_and_semicolons_between_words_are_spaces_as_on_the_page(agent, typed):
    grace = create_contact()
    Contact.objects.create(name="Grace Lovelace")
    page = Client()
    page.force_login(agent.user)

    found = [item["id"] for item in agent.get(URL, q=typed).json()["items"]]
    assert found == [grace.pk] == [c.pk for c in page.get("/contacts/", {"q": typed}).context["contacts"]]


def test_a_search_pages_by_cursor_too(agent):
    for n in range(5):
        Contact.objects.create(name=f"Hopper {n}")
    Contact.objects.create(name="Someone else")

    first = agent.get(URL, q="hopper", limit=2).json()
    assert "q=hopper" in first["next"] and "limit=2" in first["next"]
    second = agent.client.get(first["next"]).json()

    assert [i["name"] for i in first["items"] + second["items"]] == ["Hopper 0", "Hopper 1", "Hopper 2", "Hopper 3"]


def test_the_sort_orders_and_pages_like_the_list(agent):
    for name in ["Beta", "Alpha", "Gamma"]:
        Contact.objects.create(name=name)

    first = agent.get(URL, sort="created", limit=2).json()
    rest = agent.client.get(first["next"]).json()

    assert [i["name"] for i in first["items"] + rest["items"]] == ["Gamma", "Alpha", "Beta"]
    assert rest["next"] is None


@pytest.mark.parametrize(
    "after",
    [
        "!!!",
        "bm90IGpzb24",  # "not json"
        encode_cursor(["\x00", 1]),  # a NUL in the name was a 500 once
        encode_cursor(["Ada", 2**64]),
        encode_cursor(["Ada"]),
        encode_cursor({"name": "Ada"}),
        base64.urlsafe_b64encode(b"[" * 5000).decode(),
        "abc\x00",
        "%ED%A0%80",  # a lone surrogate, as UTF-8
    ],
    ids=["not-base64", "not-json", "nul-in-value", "huge-id", "short", "object", "deep", "nul-in-param", "surrogate"],
)
def test_a_damaged_cursor_is_a_400_problem(agent, after):
    Contact.objects.create(name="Ada")

    url = f"{URL}?after={after}" if after.startswith("%") else f"{URL}?{urlencode({'after': after})}"
    body = problem(agent.client.get(url), 400)

    assert "after" in body["detail"]


@pytest.mark.parametrize(("params", "where"), [({"q": "a\x00b"}, "query.q"), ({"sort": "x"}, "query.sort")])
def test_bad_list_parameters_are_a_400_naming_them(agent, params, where):
    """Malformed query parameters are a 400, as README says and as the call log answers them (422 is for bodies)."""
    body = problem(agent.get(URL, **params), 400)

    assert body["detail"].startswith(f"{where}: ")
    assert body["errors"][0]["where"] == where


@pytest.mark.parametrize("path", [URL, "/api/v1/calls"])
@pytest.mark.parametrize("limit", ["0", "201", "ten", "²", "-1", "1.5"])
def test_a_bad_limit_is_the_same_400_on_the_contacts_and_the_call_log(path, limit):
    api = Api(create_user("two-lists", "agent"), scopes=("contacts:read", "calls:read"))

    body = problem(api.get(path, limit=limit), 400)

    assert body["detail"] == "limit: give a whole number from 1 to 200 (default 50)."


def test_the_limit_defaults_to_50_and_goes_to_200(agent):
    Contact.objects.bulk_create([Contact(name=f"C{n:03}") for n in range(201)])

    assert len(agent.get(URL).json()["items"]) == 50
    whole = agent.get(URL, limit=200).json()
    assert len(whole["items"]) == 200 and whole["next"]


def test_a_list_pages_query_count_does_not_grow_with_contacts(agent):
    def add(n):
        for i in range(n):
            contact = Contact.objects.create(name=f"Counted {Contact.objects.count()} {i}", owner=agent.user)
            ContactPhone.objects.create(contact=contact, number=f"+4474001234{Contact.objects.count():02}")

    captured_sql = []

    def queries(q=""):
        with CaptureQueriesContext(connection) as captured:
            response = agent.get(URL, q=q)
        assert response.status_code == 200
        captured_sql.append([q["sql"] for q in captured.captured_queries])
        return len(captured), len(response.json()["items"])

    add(2)
    agent.get(URL)  # the token's first use notes it, and the owner's permissions are read once
    few, few_search = queries(), queries("counted")
    add(12)
    many, many_search = queries(), queries("counted")

    assert many[1] == 14 and many_search[1] == 14
    assert (many[0], many_search[0]) == (few[0], few_search[0]), captured_sql


# Reading one.


def test_it_reads_a_contact_in_the_resource_shape(agent):
    contact = create_contact()
    contact.owner, contact.external_id = agent.user, "crm-7"
    contact.save()

    body = agent.get(f"{URL}/{contact.pk}").json()

    assert set(body) == SHAPE
    assert body["owner"] == "api-agent" and body["external_id"] == "crm-7"
    assert body["url"] == f"/contacts/{contact.pk}/"
    assert body["phones"][0] == {
        "id": contact.phones.get(is_primary=True).pk,
        "number": "+447400123456",
        "label": "mobile",
        "is_primary": True,
        "do_not_call": False,
    }
    assert [p["number"] for p in body["phones"]] == ["+447400123456", "+442079460123"]


@pytest.mark.parametrize("contact_id", ["999999", str(2**70)])
def test_a_missing_contact_is_a_404(agent, contact_id):
    for response in (
        agent.get(f"{URL}/{contact_id}"),
        agent.send("patch", f"{URL}/{contact_id}", {"name": "X"}),
    ):
        assert "no contact" in problem(response, 404)["detail"]


def test_reads_need_contacts_read_and_writes_contacts_write():
    user = create_user("scoped", "supervisor")
    contact = create_contact()
    calls_only, read_only = Api(user, ["calls:read"]), Api(user, ["contacts:read"])

    assert "contacts:read" in problem(calls_only.get(URL), 403)["detail"]
    assert "contacts:read" in problem(calls_only.get(f"{URL}/{contact.pk}"), 403)["detail"]
    assert read_only.get(f"{URL}/{contact.pk}").status_code == 200
    for response in (
        read_only.send("post", URL, {"name": "New"}),
        read_only.send("patch", f"{URL}/{contact.pk}", {"name": "New"}),
        read_only.client.delete(f"{URL}/{contact.pk}"),
        read_only.send("put", f"{URL}/by-external-id/x1", {"name": "New"}),
    ):
        assert "contacts:write" in problem(response, 403)["detail"]
    assert Contact.objects.get().name == "Grace Hopper"


def test_a_person_without_a_role_may_not_read_contacts():
    nobody = Api(create_user("norole"))

    assert "role" in problem(nobody.get(URL), 403)["detail"]


# Creating.


def test_it_creates_a_contact_with_numbers_in_any_format(agent):
    response = agent.send(
        "post",
        URL,
        {
            "name": "Lin Lead",
            "company": "Form Co",
            "email": "lin@example.com",
            "external_id": "lead-1",
            "phones": [{"number": "020 7946 0100"}, {"number": "+44 7400 123 456", "is_primary": True}],
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == SHAPE and body["owner"] == "api-agent"  # whoever creates a contact owns it
    assert [(p["number"], p["label"], p["is_primary"]) for p in body["phones"]] == [
        ("+447400123456", "mobile", True),
        ("+442079460100", "work", False),  # a landline is labelled as what it is, as on the pages
    ]
    contact = Contact.objects.get(pk=body["id"])
    assert contact.external_id == "lead-1" and contact.phones.count() == 2


def test_a_new_contacts_only_number_is_primary_and_owner_may_be_nobody(agent):
    body = agent.send("post", URL, {"name": "Solo", "owner": None, "phones": [{"number": "07400 123456"}]}).json()

    assert body["owner"] is None and body["phones"][0]["is_primary"] is True


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ({"name": "X", "phones": [{"number": "12"}]}, "phones.0.number", "not a valid phone number"),
        ({"name": "X", "phones": [{"number": "hello"}]}, "phones.0.number", "not a phone number"),
        ({"name": "X", "phones": [{"number": "020 7946 0100 ext 22"}]}, "phones.0.number", "extension"),
        ({"name": "X", "phones": [{"number": "+442079460100"}, {"number": "020 7946 0100"}]}, "phones", "twice"),
        (
            {
                "name": "X",
                "phones": [
                    {"number": "+447400123456", "is_primary": True},
                    {"number": "+442079460100", "is_primary": True},
                ],
            },
            "phones",
            "one number can be primary",
        ),
        ({"name": "X", "phones": [{"number": "+442079460100"}] * 21}, "phones", ""),
        ({"name": "X", "phones": [{"number": "+442079460100", "kind": "work"}]}, "phones.0.kind", ""),
        ({"name": "X", "email": "not an email"}, "email", "email"),
        ({"name": "X", "owner": "ghost"}, "owner", "ghost"),
        ({"name": "X", "nickname": "Y"}, "nickname", ""),
        ({"name": "X\x00Y"}, "name", "NUL"),
        ('{"name": "\\ud800"}', "name", "string"),
        ({"name": "x" * 201}, "name", "200"),
        ({"name": "X", "external_id": "e" * 256}, "external_id", "255"),
        ({"name": ""}, "name", ""),
        ({"company": "No name"}, "name", ""),
        ({"name": 7}, "name", ""),
    ],
    ids=[
        "short-number",
        "words",
        "extension",
        "twice",
        "two-primaries",
        "too-many-numbers",
        "unknown-phone-field",
        "email",
        "unknown-owner",
        "unknown-field",
        "nul",
        "surrogate",
        "long-name",
        "long-external-id",
        "empty-name",
        "no-name",
        "wrong-type",
    ],
)
def test_a_bad_body_is_a_422_naming_the_field(agent, body, where, says):
    found = problem(agent.send("post", URL, body), 422)

    assert found["detail"].split(":")[0].endswith(where)
    assert says.lower() in json.dumps(found).lower()
    assert not Contact.objects.exists()


def test_malformed_json_is_a_400(agent):
    assert problem(agent.send("post", URL, '{"name": '), 400)["detail"]


def test_a_taken_external_id_is_a_409(agent):
    Contact.objects.create(name="First", external_id="dup")

    assert "by-external-id" in problem(agent.send("post", URL, {"name": "Second", "external_id": "dup"}), 409)["detail"]


# Changing.


def test_patch_changes_only_what_was_sent(agent):
    contact = create_contact()
    contact.notes, contact.owner, contact.external_id = "Keep me", agent.user, "ext-1"
    contact.save()
    before = agent.get(f"{URL}/{contact.pk}").json()

    response = agent.send("patch", f"{URL}/{contact.pk}", {"company": "New Dental"})

    assert response.status_code == 200
    after = response.json()
    assert after["company"] == "New Dental"
    changed = {k for k in SHAPE if after[k] != before[k]}
    assert changed == {"company", "updated_at"}


def test_patch_with_phones_replaces_the_list(agent):
    contact = create_contact()  # +447400123456 (primary) and +442079460123
    mobile = contact.phones.get(number="+447400123456")

    body = agent.send(
        "patch",
        f"{URL}/{contact.pk}",
        {"phones": [{"number": "07400 123456", "label": "home"}, {"number": "+44 161 496 0000", "is_primary": True}]},
    ).json()

    assert [(p["number"], p["label"], p["is_primary"]) for p in body["phones"]] == [
        ("+441614960000", "work", True),
        ("+447400123456", "home", False),
    ]
    assert body["phones"][1]["id"] == mobile.pk  # the same number keeps its row
    assert not ContactPhone.objects.filter(number="+442079460123").exists()


def test_patch_renumbers_a_row_given_its_id_and_empty_phones_removes_all(agent):
    contact = create_contact()
    work = contact.phones.get(number="+442079460123")

    body = agent.send(
        "patch",
        f"{URL}/{contact.pk}",
        {"phones": [{"number": "+447400123456"}, {"id": work.pk, "number": "020 7946 0999"}]},
    ).json()
    assert {p["id"]: p["number"] for p in body["phones"]}[work.pk] == "+442079460999"

    assert agent.send("patch", f"{URL}/{contact.pk}", {"phones": []}).json()["phones"] == []
    assert (
        "not a number of this contact"
        in problem(
            agent.send("patch", f"{URL}/{contact.pk}", {"phones": [{"id": 123456, "number": "+447400123456"}]}), 422
        )["detail"]
    )


def test_an_agent_marks_do_not_call_but_only_a_supervisor_clears_it(agent, supervisor):
    contact = create_contact()
    path = f"{URL}/{contact.pk}"

    marked = agent.send(
        "patch", path, {"do_not_call": True, "phones": [{"number": "+447400123456", "do_not_call": True}]}
    )
    assert marked.status_code == 200 and marked.json()["do_not_call"] is True
    assert marked.json()["phones"] == [{**marked.json()["phones"][0], "do_not_call": True}]  # the other is gone

    assert "supervisor" in problem(agent.send("patch", path, {"do_not_call": False}), 422)["detail"]
    for phones in (
        [],
        [{"number": "+447400123456", "do_not_call": False}],
        [{"id": marked.json()["phones"][0]["id"], "number": "+447400999999"}],
    ):
        assert "supervisor" in json.dumps(problem(agent.send("patch", path, {"phones": phones}), 422))
    assert agent.send("patch", path, {"name": "Still Grace"}).status_code == 200  # unsent, do-not-call stays
    contact.refresh_from_db()
    assert contact.do_not_call and contact.phones.get().do_not_call

    clearing = {"do_not_call": False, "phones": [{"number": "+447400123456", "do_not_call": False}]}
    assert "reason" in problem(supervisor.send("patch", path, clearing), 400)["detail"]  # clearing says why
    cleared = supervisor.send("patch", path, {**clearing, "reason": "Asked to be called again"})
    assert cleared.status_code == 200 and cleared.json()["do_not_call"] is False
    assert cleared.json()["phones"][0]["do_not_call"] is False


def test_patch_changes_the_owner_and_the_external_id(agent):
    contact = create_contact()
    create_user("someone", "agent")

    body = agent.send("patch", f"{URL}/{contact.pk}", {"owner": "someone", "external_id": "x-9"}).json()
    assert body["owner"] == "someone" and body["external_id"] == "x-9"
    body = agent.send("patch", f"{URL}/{contact.pk}", {"owner": None, "external_id": None}).json()
    assert body["owner"] is None and body["external_id"] is None


# Deleting.


def test_an_agent_may_not_delete_a_contact(agent):
    contact = create_contact()

    assert "delete" in problem(agent.client.delete(f"{URL}/{contact.pk}"), 403)["detail"]
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_a_supervisor_deletes_a_contact(supervisor):
    contact = create_contact()

    response = supervisor.client.delete(f"{URL}/{contact.pk}")

    assert response.status_code == 204 and response.content == b""
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert problem(supervisor.client.delete(f"{URL}/{contact.pk}"), 404)


# Upserting.


def test_upsert_creates_then_changes_only_what_was_sent(agent):
    path = f"{URL}/by-external-id/hs-42"

    created = agent.send(
        "put", path, {"name": "Uma Upsert", "company": "First", "phones": [{"number": "07400 123456"}]}
    )
    assert created.status_code == 201
    first = created.json()
    assert first["external_id"] == "hs-42" and first["owner"] == "api-agent"

    updated = agent.send("put", path, {"company": "Second"})
    assert updated.status_code == 200
    second = updated.json()
    assert second["id"] == first["id"] and second["company"] == "Second"
    assert second["name"] == "Uma Upsert" and second["phones"] == first["phones"]
    assert Contact.objects.count() == 1


def test_upsert_needs_a_name_to_create_and_refuses_what_post_refuses(agent):
    path = f"{URL}/by-external-id/new-1"

    assert problem(agent.send("put", path, {"company": "Nameless"}), 422)["detail"].startswith("body.payload.name")
    assert problem(agent.send("put", path, {"name": "X", "external_id": "other"}), 422)
    assert problem(agent.send("put", path, {"name": "X", "phones": [{"number": "12"}]}), 422)
    assert problem(agent.send("put", f"{URL}/by-external-id/{'e' * 256}", {"name": "X"}), 422)
    assert not Contact.objects.exists()


def test_upsert_changes_the_contact_another_request_created_meanwhile(agent, monkeypatch):
    from calls.api import contacts as module

    Contact.objects.create(name="Made Meanwhile", external_id="race-1")
    real, looked = module._contacts, []

    def first_look_misses():
        looked.append(1)
        return real().none() if len(looked) == 1 else real()

    monkeypatch.setattr(module, "_contacts", first_look_misses)
    response = agent.send("put", f"{URL}/by-external-id/race-1", {"name": "Sent Twice", "company": "Co"})

    assert response.status_code == 200
    assert response.json()["name"] == "Sent Twice" and Contact.objects.get().company == "Co"


def test_an_external_id_with_a_nul_is_refused_in_the_path(agent):
    assert "external_id" in problem(agent.send("put", f"{URL}/by-external-id/a%00b", {"name": "X"}), 422)["detail"]


def test_patch_refuses_another_contacts_external_id_and_a_null_name(agent):
    Contact.objects.create(name="Holder", external_id="taken")
    contact = create_contact()

    assert problem(agent.send("patch", f"{URL}/{contact.pk}", {"external_id": "taken"}), 409)
    assert problem(agent.send("patch", f"{URL}/{contact.pk}", {"name": None}), 422)["detail"].startswith(
        "body.payload.name"
    )
    assert problem(agent.get(f"{URL}/abc"), 422)["detail"].startswith("path.contact_id")
    contact.refresh_from_db()
    assert contact.external_id is None and contact.name == "Grace Hopper"


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has no row locks (FOR UPDATE): a write locks the whole database"
)
def test_a_partial_update_reads_the_contact_locked_in_the_transaction_that_writes_it(agent):
    """The form writes every field: a PATCH that read the row unlocked could undo a concurrent PATCH of another
    field. The row is read FOR UPDATE, in the same transaction as the write."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    grace = Contact.objects.create(name="Grace Hopper")
    with CaptureQueriesContext(connection) as queries:
        response = agent.send("patch", f"{URL}/{grace.pk}", {"notes": "Prefers mornings."})

    assert response.status_code == 200
    sql = [q["sql"] for q in queries.captured_queries]
    locked = next(i for i, q in enumerate(sql) if "FOR UPDATE" in q and "calls_contact" in q)
    written = next(i for i, q in enumerate(sql) if q.startswith('UPDATE "calls_contact"'))
    assert locked < written
    assert not any(q.startswith(("COMMIT", "RELEASE SAVEPOINT")) for q in sql[locked:written])


def test_the_lists_filters_are_the_pages_and_the_next_link_keeps_them(agent):
    mine = [Contact.objects.create(name=f"Mine {i}", company="Cobalt Dental", owner=agent.user) for i in range(3)]
    Contact.objects.create(name="Theirs", company="Cobalt Dental")
    marked = Contact.objects.create(name="Marked", company="Other", owner=agent.user, do_not_call=True)

    first = agent.get(URL, mine="true", company="Cobalt Dental", dnc="hide", limit=2).json()
    rest = agent.client.get(first["next"]).json()
    only_marked = agent.get(URL, dnc="only").json()
    unknown = agent.get(URL, owner="me")

    assert [c["id"] for c in first["items"] + rest["items"]] == [c.pk for c in mine]
    assert "mine=true" in first["next"] and "company=Cobalt+Dental" in first["next"] and "dnc=hide" in first["next"]
    assert [c["id"] for c in only_marked["items"]] == [marked.pk]
    assert unknown.status_code == 400 and unknown.json()["detail"].startswith("owner: not a parameter")

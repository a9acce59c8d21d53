"""The audit trail records every audited kind of change with the person and the request id (raw SQL included),
and exports, imports, logins and lock-outs; do-not-call is cleared only with a reason, shown on the timeline."""

from __future__ import annotations

import itertools

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from calls import audit
from calls.models import (
    Agent,
    AgentGroup,
    ApiToken,
    AuditEntry,
    Call,
    CallbackNumber,
    ConsentRule,
    Contact,
    ContactImport,
    ContactPhone,
    DispositionCode,
    WebhookEndpoint,
)
from calls.roles import SUPERVISOR, assign_role
from calls.webhooks import safety
from tests.conftest import PASSWORD, create_contact, create_user

pytestmark = pytest.mark.django_db

IDS = itertools.count(1)


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the audit trail's triggers are PostgreSQL's")


def request_id() -> str:
    return f"req-test-{next(IDS):06d}"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


def only(**filters) -> AuditEntry:
    found = entries(**filters)
    assert len(found) == 1, [(e.kind, e.object_id, e.before, e.after) for e in found]
    return found[0]


def edit_data(contact: Contact, **changes) -> dict[str, str]:
    """The contact form's POST as the page would send it, with changes (dnc_reason, or a number's fields)."""
    phones = list(contact.phones.order_by("pk"))
    data = {
        "name": contact.name,
        "company": contact.company,
        "email": contact.email,
        "notes": contact.notes,
        "consent_override": contact.consent_override,
        "phones-TOTAL_FORMS": str(len(phones)),
        "phones-INITIAL_FORMS": str(len(phones)),
        "phones-MIN_NUM_FORMS": "0",
        "phones-MAX_NUM_FORMS": "20",
    }
    if contact.do_not_call:
        data["do_not_call"] = "on"
    for i, phone in enumerate(phones):
        data |= {
            f"phones-{i}-id": str(phone.pk),
            f"phones-{i}-label": phone.label,
            f"phones-{i}-number": phone.number,
        }
        if phone.is_primary:
            data[f"phones-{i}-is_primary"] = "on"
        if phone.do_not_call:
            data[f"phones-{i}-do_not_call"] = "on"
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


# --- Contacts and numbers, through the pages ------------------------------------------------------------------


def test_a_contacts_change_is_recorded_with_the_person_the_request_and_before_and_after(agent_user):
    contact = create_contact()
    rid = request_id()
    response = logged_in(agent_user).post(
        f"/contacts/{contact.pk}/edit/", edit_data(contact, company="Brightwater"), headers={"X-Request-ID": rid}
    )
    assert response.status_code == 302
    entry = only(kind="contact.update", object_id=str(contact.pk))
    assert (entry.actor_id, entry.actor_name, entry.request_id) == (agent_user.pk, "alex", rid)
    assert entry.before == {"company": "Cobalt Dental"} and entry.after == {"company": "Brightwater"}
    assert entry.contact_id == contact.pk and entry.object_type == "contact"


def test_saving_a_contact_unchanged_records_nothing(agent_user):
    contact = create_contact()
    client = logged_in(agent_user)
    AuditEntry.objects.all().delete()
    assert client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact)).status_code == 302
    assert entries() == []


def test_a_new_contact_its_numbers_and_its_deletion_are_recorded(agent_user, supervisor_user):
    rid = request_id()
    data = {
        "name": "Ada Lovelace",
        "phones-TOTAL_FORMS": "1",
        "phones-INITIAL_FORMS": "0",
        "phones-MIN_NUM_FORMS": "0",
        "phones-MAX_NUM_FORMS": "20",
        "phones-0-label": "mobile",
        "phones-0-number": "07400 321123",
    }
    assert logged_in(agent_user).post("/contacts/new/", data, headers={"X-Request-ID": rid}).status_code == 302
    contact = Contact.objects.get(name="Ada Lovelace")
    created = only(kind="contact.create", object_id=str(contact.pk))
    number = only(kind="number.create", contact_id=contact.pk)
    assert created.request_id == number.request_id == rid and created.actor_name == number.actor_name == "alex"
    assert created.before is None and created.after["name"] == "Ada Lovelace"
    assert number.after["number"] == "+447400321123"

    rid = request_id()
    response = logged_in(supervisor_user).post(f"/contacts/{contact.pk}/delete/", headers={"X-Request-ID": rid})
    assert response.status_code == 302
    deleted = only(kind="contact.delete", object_id=str(contact.pk))
    assert (deleted.actor_name, deleted.request_id, deleted.after) == ("priya", rid, None)
    assert deleted.before["name"] == "Ada Lovelace"
    assert only(kind="number.delete", contact_id=contact.pk).request_id == rid


# --- Do-not-call: cleared only with a reason, which the timeline shows ------------------------------------------


def test_clearing_a_numbers_do_not_call_asks_for_a_reason_and_keeps_it(supervisor_user, agent_user):
    contact = create_contact()
    phone = contact.phones.order_by("pk").first()
    phone.do_not_call = True
    phone.save()
    client = logged_in(supervisor_user)
    cleared = edit_data(contact, **{"phones-0-do_not_call": None})

    refused = client.post(f"/contacts/{contact.pk}/edit/", cleared)
    assert refused.status_code == 200 and "Say why do-not-call is cleared" in refused.content.decode()
    phone.refresh_from_db()
    assert phone.do_not_call  # nothing written

    rid = request_id()
    reason = "Asked to be called again, by email of 3 March"
    response = client.post(
        f"/contacts/{contact.pk}/edit/", cleared | {"dnc_reason": reason}, headers={"X-Request-ID": rid}
    )
    assert response.status_code == 302
    entry = only(kind="number.dnc_cleared", object_id=str(phone.pk))
    assert (entry.actor_name, entry.request_id, entry.reason) == ("priya", rid, reason)
    assert entry.before == {"do_not_call": True} and entry.after == {"do_not_call": False}

    page = logged_in(agent_user).get(f"/contacts/{contact.pk}/").content.decode()
    assert "Do-not-call cleared" in page and "by priya" in page and reason in page


def test_clearing_a_contacts_do_not_call_and_removing_a_do_not_call_number_need_a_reason(supervisor_user):
    contact = create_contact()
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    contact.refresh_from_db()
    client = logged_in(supervisor_user)
    assert client.post(f"/contacts/{contact.pk}/edit/", edit_data(contact, do_not_call=None)).status_code == 200
    assert (
        client.post(
            f"/contacts/{contact.pk}/edit/", edit_data(contact, do_not_call=None, dnc_reason="Wrong person marked")
        ).status_code
        == 302
    )
    assert only(kind="contact.dnc_cleared").reason == "Wrong person marked"

    phone = contact.phones.order_by("pk").last()
    ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=True)
    contact.refresh_from_db()
    removal = edit_data(contact, **{"phones-1-DELETE": "on"})
    assert client.post(f"/contacts/{contact.pk}/edit/", removal).status_code == 200
    assert ContactPhone.objects.filter(pk=phone.pk).exists()
    assert client.post(f"/contacts/{contact.pk}/edit/", removal | {"dnc_reason": "Not their line"}).status_code == 302
    assert only(kind="number.delete", object_id=str(phone.pk)).reason == "Not their line"
    page = client.get(f"/contacts/{contact.pk}/").content.decode()
    assert "Not their line" in page and "Wrong person marked" in page


def test_the_api_refuses_to_clear_do_not_call_without_a_reason_and_keeps_the_one_given(supervisor_user):
    contact = create_contact()
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    _, token = ApiToken.issue(supervisor_user, name="t", scopes=["contacts:read", "contacts:write"])
    client = Client(headers={"Authorization": f"Bearer {token}"})
    path = f"/api/v1/contacts/{contact.pk}"

    refused = client.patch(path, {"do_not_call": False}, content_type="application/json")
    assert refused.status_code == 400 and refused["Content-Type"] == "application/problem+json"
    assert refused.json()["errors"][0]["where"].endswith("reason")
    rid = request_id()
    response = client.patch(
        path,
        {"do_not_call": False, "reason": "Opted in"},
        content_type="application/json",
        headers={"X-Request-ID": rid},
    )
    assert response.status_code == 200
    entry = only(kind="contact.dnc_cleared")
    assert (entry.actor_name, entry.request_id, entry.reason) == ("priya", rid, "Opted in")


# --- Calls: the wrap-up, by the page and by raw SQL ------------------------------------------------------------


def test_a_raw_sql_update_of_a_call_is_recorded_with_the_person_and_the_request(agent_user):
    contact = create_contact()
    call = Call.objects.create(contact=contact, to_number="+447400123456", created_by=agent_user)
    table = Call._meta.db_table
    with audit.acting(user_id=agent_user.pk, request_id="req-raw-sql-1"), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET notes = %s, disposition_code = %s WHERE id = %s", ["Rang back", "X", call.pk]
        )
    entry = only(kind="call.update")
    assert (entry.actor_name, entry.request_id, entry.object_id, entry.contact_id) == (
        "alex",
        "req-raw-sql-1",
        str(call.pk),
        contact.pk,
    )
    assert entry.before == {"notes": "", "disposition_code": ""}
    assert entry.after == {"notes": "Rang back", "disposition_code": "X"}

    # SQL from outside the app (no comment) is recorded too, by nobody.
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET notes = 'psql' WHERE id = %s", [call.pk])
    outside = entries(kind="call.update")[-1]
    assert (outside.actor_id, outside.actor_name, outside.request_id) == (None, "", "")


def test_a_quiet_block_records_nothing_and_the_rest_of_its_transaction_is_recorded_again(agent_user):
    """Erasure's and retention's own writes (audit.quiet): nothing of what they remove reaches the trail."""
    from django.db import transaction

    contact = create_contact()
    call = Call.objects.create(contact=contact, to_number="+447400123456", created_by=agent_user, notes="Secret")
    AuditEntry.objects.all().delete()
    with transaction.atomic():
        with audit.quiet():
            Call.objects.filter(pk=call.pk).update(notes="")
            contact.delete()
        Call.objects.filter(pk=call.pk).update(disposition_code="X")
    assert [entry.kind for entry in entries()] == ["call.update"]
    assert only(kind="call.update").after == {"disposition_code": "X"}
    # The block set it back: the rest of the transaction, on this connection, is recorded.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('calls.audit_quiet', true)")
        assert cursor.fetchone()[0] in (None, "", "off")


def test_following_a_call_records_nothing(agent_user):
    call = Call.objects.create(to_number="+447400123456", created_by=agent_user)
    AuditEntry.objects.all().delete()
    Call.objects.filter(pk=call.pk).update(state=Call.State.LIVE, vcc_status="connected")
    assert entries() == []


# --- The directory, rules, people, roles, tokens and webhooks --------------------------------------------------


def test_caller_ids_rules_dispositions_agents_groups_users_and_roles_are_recorded(admin_role_user):
    user = create_user("newbie")
    AuditEntry.objects.all().delete()
    with audit.acting(user_id=admin_role_user.pk, request_id="req-directory-1"):
        number = CallbackNumber.objects.create(number="+442079460999", label="Leeds")
        number.label = "Leeds office"
        number.save()
        rule = ConsentRule.objects.create(country="LI", consent="yes")
        code = DispositionCode.objects.create(code="Moved", description="Has moved")
        agent = Agent.objects.create(display_id="1009", name="New Agent", user=user)
        group = AgentGroup.objects.create(display_id="777", name="Night shift")
        group.members.add(agent)
        number.allowed_agents.add(agent)
        assign_role(user, SUPERVISOR)
        user.set_password("another-password-1")
        user.save()
    kinds = {e.kind for e in entries(request_id="req-directory-1", actor_name="ada")}
    assert {
        "callerid.create",
        "callerid.update",
        "consentrule.create",
        "disposition.create",
        "agent.create",
        "group.create",
        "group_member.create",
        "callerid_agent.create",
        "role.create",
        "user.update",
    } <= kinds
    assert only(kind="callerid.update").after == {"label": "Leeds office"}
    assert only(kind="role.create").after["group_id"] == Group.objects.get(name=SUPERVISOR).pk
    password = only(kind="user.update")
    assert password.after == {"password": "(secret, changed)"} and "pbkdf2" not in str(password.before)
    assert only(kind="consentrule.create").object_id == str(rule.pk)
    assert only(kind="disposition.create").object_id == str(code.pk)


def test_agent_presence_and_last_login_are_not_recorded(agent_user):
    AuditEntry.objects.all().delete()
    Agent.objects.filter(user=agent_user).update(presence="ready")
    type(agent_user).objects.filter(pk=agent_user.pk).update(last_login="2027-01-01T00:00:00Z")
    assert entries() == []


def test_an_api_token_made_and_revoked_on_its_page_is_recorded_without_its_secret(agent_user):
    client = logged_in(agent_user)
    rid = request_id()
    response = client.post(
        "/profile/tokens/", {"name": "Helpdesk", "scopes": ["calls:read"]}, headers={"X-Request-ID": rid}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    made = only(kind="apitoken.create")
    assert (made.actor_name, made.request_id, made.after["name"]) == ("alex", rid, "Helpdesk")
    assert made.after["digest"] == "(secret, changed)" and token.digest not in str(made.after)
    rid = request_id()
    assert client.post(f"/profile/tokens/{token.pk}/revoke/", headers={"X-Request-ID": rid}).status_code in (200, 302)
    revoked = only(kind="apitoken.update")
    assert revoked.request_id == rid and revoked.before["revoked_at"] is None and revoked.after["revoked_at"]


def test_a_webhook_endpoint_added_on_its_page_is_recorded_without_its_secret(admin_role_user, monkeypatch, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    monkeypatch.setattr(safety, "resolve", lambda host, port: ["93.184.215.14"])
    rid = request_id()
    response = logged_in(admin_role_user).post(
        "/integrations/webhooks/new/",
        {"url": "https://hooks.example.com/in", "event_types": ["call.*"]},
        headers={"X-Request-ID": rid},
    )
    assert response.status_code == 200
    endpoint = WebhookEndpoint.objects.get()
    entry = only(kind="webhook.create")
    assert (entry.actor_name, entry.request_id, entry.object_id) == ("ada", rid, str(endpoint.pk))
    assert entry.after["url"] == "https://hooks.example.com/in" and endpoint.secret not in str(entry.after)


def test_a_webhook_secret_rotated_on_its_page_is_recorded_without_any_secret(admin_role_user):
    """Rotated twice: the second rotation's entry says the secret and the previous ones changed, and holds none of
    the three (nor the previous ones' ends: the list is masked whole)."""
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_0")
    client = logged_in(admin_role_user)
    client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/")
    first = WebhookEndpoint.objects.get().secret
    rid = request_id()

    response = client.post(f"/integrations/webhooks/{endpoint.pk}/rotate/", headers={"X-Request-ID": rid})
    assert response.status_code == 200

    entry = only(kind="webhook.update", request_id=rid)
    assert (entry.actor_name, entry.object_id) == ("ada", str(endpoint.pk))
    assert entry.before == {"secret": "(secret)", "previous_secrets": "(secret)"}
    assert entry.after == {"secret": "(secret, changed)", "previous_secrets": "(secret, changed)"}
    recorded = str(entry.before) + str(entry.after)
    assert not [secret for secret in ("whsec_0", first, WebhookEndpoint.objects.get().secret) if secret in recorded]


# --- Exports, imports, logins and lock-outs --------------------------------------------------------------------


def test_a_contact_export_is_recorded_with_its_row_count(supervisor_user):
    create_contact()
    Contact.objects.create(name="Second", notes='two\nlines, and a "quote"')
    rid = request_id()
    response = logged_in(supervisor_user).get("/contacts/export/", headers={"X-Request-ID": rid})
    b"".join(response.streaming_content)
    entry = only(kind="export.contacts")
    assert (entry.actor_name, entry.request_id) == ("priya", rid)
    assert entry.after == {"filters": {}, "rows": 2, "complete": True}


def test_a_call_export_is_recorded_with_its_filters_and_row_count(supervisor_user, agent_user):
    for number in ("+447400123456", "+447400123457", "+447400123458"):
        Call.objects.create(to_number=number, created_by=agent_user, notes="a\nnote")
    rid = request_id()
    response = logged_in(supervisor_user).get(
        "/calls/export.csv", {"errors": "", "sort": "-time"}, headers={"X-Request-ID": rid}
    )
    assert response.status_code == 200
    b"".join(response.streaming_content)
    entry = only(kind="export.calls")
    assert (entry.actor_name, entry.request_id) == ("priya", rid)
    assert entry.after == {"filters": {"sort": "-time"}, "rows": 3, "complete": True}


def test_an_import_is_recorded_as_the_person_who_confirmed_it(agent_user, settings):
    settings.CONTACT_IMPORT_BACKGROUND = False
    client = logged_in(agent_user)
    text = "Name,Mobile\nAda Lovelace,07400 321123\nCharles Babbage,07400 321124\n"
    upload = client.post("/contacts/import/", {"file": SimpleUploadedFile("c.csv", text.encode(), "text/csv")})
    imp = ContactImport.objects.get(pk=upload.url.rstrip("/").split("/")[-1])
    rid = request_id()
    assert client.post(f"/contacts/import/{imp.pk}/confirm/", headers={"X-Request-ID": rid}).status_code == 302
    confirmed = only(kind="import.confirm")
    assert (confirmed.actor_name, confirmed.request_id, confirmed.object_id) == ("alex", rid, str(imp.pk))
    done = only(kind="import")
    assert done.actor_name == "alex" and done.after["created"] == 2 and done.after["filename"] == "c.csv"
    created = entries(kind="contact.create")
    assert len(created) == 2 and {e.actor_name for e in created} == {"alex"}
    assert {e.request_id for e in created} == {f"import:{imp.pk}"}


def test_a_login_and_a_lock_out_are_recorded(agent_user, settings):
    settings.LOGIN_FAILURES_PER_ACCOUNT = 3
    rid = request_id()
    response = Client().post("/login/", {"username": "alex", "password": PASSWORD}, headers={"X-Request-ID": rid})
    assert response.status_code == 302
    login = only(kind="login")
    assert (login.actor_name, login.request_id, login.object_id) == ("alex", rid, str(agent_user.pk))
    for _ in range(3):
        Client().post("/login/", {"username": "alex", "password": "wrong"}, headers={"X-Request-ID": rid})
    lockout = only(kind="lockout")
    assert lockout.request_id == rid and lockout.after["failures"] == 3 and lockout.after["kind"] == "account"


def test_the_django_admin_does_not_clear_do_not_call_it_sends_to_the_contact_page(admin_role_user):
    contact = create_contact()
    Contact.objects.filter(pk=contact.pk).update(do_not_call=True)
    phone = contact.phones.order_by("pk").first()
    ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=True)
    client = logged_in(admin_role_user)
    response = client.post(
        f"/admin/calls/contactphone/{phone.pk}/change/",
        {"contact": contact.pk, "number": phone.number, "label": phone.label},
    )
    assert response.status_code == 200 and "cleared on the contact" in response.content.decode()
    assert client.get(f"/admin/calls/contactphone/{phone.pk}/delete/").status_code == 403
    phone.refresh_from_db()
    assert phone.do_not_call


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_a_change_is_recorded_with_the_person_and_the_request(agent_user):
    from asgiref.sync import sync_to_async
    from django.db import connections
    from django.test import AsyncClient

    contact = await sync_to_async(create_contact)()
    client = AsyncClient()
    await client.aforce_login(agent_user)
    data = await sync_to_async(edit_data)(contact, company="Brightwater")
    response = await client.post(f"/contacts/{contact.pk}/edit/", data, headers={"X-Request-ID": "req-asgi-000001"})
    assert response.status_code == 302
    entry = await AuditEntry.objects.aget(kind="contact.update")
    assert (entry.actor_name, entry.request_id, entry.after) == ("alex", "req-asgi-000001", {"company": "Brightwater"})
    await sync_to_async(connections.close_all)()  # asgiref's thread's own connection


@pytest.fixture
def sim(monkeypatch):
    from tests._sim import fresh_simulator

    yield from fresh_simulator(monkeypatch)


def test_a_wrap_up_on_the_call_panel_is_recorded_and_placing_and_following_the_call_are_not(sim, agent_client, placed):
    from tests._sim import HTMX, poll

    sim.clock.advance(70)  # the call ends
    poll(agent_client, placed)
    placed.refresh_from_db()
    assert placed.state == Call.State.ENDED
    assert entries(object_type="call") == []  # placing and following it wrote nothing to the trail
    code = DispositionCode.objects.filter(is_active=True).first()
    rid = request_id()
    response = agent_client.post(
        f"/calls/{placed.pk}/wrapup/",
        {"disposition": code.pk, "notes": "Wants a quote"},
        headers={**HTMX, "X-Request-ID": rid},
    )
    assert response.status_code == 200
    entry = only(kind="call.update", object_id=str(placed.pk))
    assert (entry.actor_name, entry.request_id, entry.contact_id) == ("alex", rid, placed.contact_id)
    assert entry.after == {"notes": "Wants a quote", "disposition_code": code.code}


def test_an_export_cut_short_is_recorded_as_such_and_quoted_newlines_are_not_rows(supervisor_user):
    from calls.audit.exports import audited_export

    closed = []

    class Chunks:
        def __init__(self):
            self.pieces = iter(['\ufeffName,Notes\r\n"Ada","two\r\nlines"\r\n"Bob', '","x"\r\n', "Cy,z\r\n"])

        def __next__(self):
            return next(self.pieces)

        def close(self):
            closed.append(True)

    with audit.acting(user_id=supervisor_user.pk, request_id="req-export-cut-1"):
        whole = audited_export(Chunks(), kind="export.contacts", filters={"q": "a"})
    assert "".join(whole).count("\n") == 5
    cut = audited_export(Chunks(), kind="export.calls", filters={})
    next(cut)
    cut.close()
    done, broken = entries(kind__startswith="export.")
    assert (done.actor_name, done.request_id) == ("priya", "req-export-cut-1")
    assert done.after == {"filters": {"q": "a"}, "rows": 3, "complete": True}
    assert broken.after == {"filters": {}, "rows": 1, "complete": False} and closed == [True]

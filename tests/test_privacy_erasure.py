"""Erasure of a contact (calls/privacy/erasure.py) and a subject's data (calls/privacy/subject.py): the confirm page
and who may use it, calls kept as "Erased contact" with reports equal, `contact.erased`, an erased do-not-call
number that still cannot be called, and the whole database dump holding no trace of the person."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone

from calls import reports
from calls.models import (
    ApiIdempotentRequest,
    ApiToken,
    Call,
    CallRollup,
    Contact,
    ContactImport,
    ContactImportKey,
    ContactImportRow,
    ContactPhone,
    DispositionCode,
    ErasedNumber,
    JobError,
    VccEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from calls.privacy import erased_do_not_call, mask_number
from calls.webhooks import delivery
from tests._calls import make_call
from tests._sim import HTMX, click, fresh_simulator, poll, primary

NAME, EMAIL = "Perpetua Quillfeather", "perpetua.q@example.org"
MOBILE, WORK = "+447400900461", "+442079460818"
# Every way the dump could hold them: E.164, without +, national with and without spaces, international.
TRACES = [
    NAME,
    EMAIL,
    MOBILE,
    WORK,
    "447400900461",
    "442079460818",
    "07400 900461",
    "07400900461",
    "020 7946 0818",
    "02079460818",
    "+44 7400 900461",
    "+44 20 7946 0818",
]
CSV = f"Name,Email,Mobile,Work phone\n{NAME},{EMAIL},07400 900461,020 7946 0818\n"


@pytest.fixture
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


def figures(now) -> tuple:
    def plain(report: reports.Report) -> dict:
        return {
            "total": report.total,
            "facets": {facet: dict(keys) for facet, keys in report.facets.items()},
            "per_day": dict(report.per_day),
            "per_agent": dict(report.per_agent),
        }

    first, last = (now - timedelta(days=30)).date(), now.date()
    return (plain(reports.build_report(first=first, last=last, now=now)),)


def erase(client: Client, contact_pk: int):
    return client.post(f"/contacts/{contact_pk}/erase/")


# --- The whole database, dumped ----------------------------------------------------------------------------------


def dump() -> str:
    """pg_dump --data-only of the test database: every row of every table, as text."""
    s = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": s.get("PASSWORD") or ""}
    command = ["pg_dump", "--data-only", "-h", s["HOST"] or "127.0.0.1", "-p", str(s["PORT"] or 5432)]
    command += ["-U", s["USER"] or "postgres", s["NAME"]]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout


@pytest.mark.django_db(transaction=True)
def test_erasure_leaves_no_trace_of_the_person_in_any_table_and_reports_stay_equal(
    agent_client, agent_user, supervisor_client, supervisor_user, london, sim, settings
):
    if connection.vendor != "postgresql":
        pytest.skip("the dump is PostgreSQL's (pg_dump)")
    settings.CONTACT_IMPORT_BACKGROUND = False
    hook = WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_x")
    DispositionCode.objects.get_or_create(code="Interested")

    # An import creates the person; another, not confirmed yet, holds them again.
    upload = SimpleUploadedFile("people.csv", CSV.encode(), content_type="text/csv")
    imported = ContactImport.objects.get(
        pk=supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2]
    )
    supervisor_client.post(f"/contacts/import/{imported.pk}/confirm/")
    contact = Contact.objects.get(name=NAME)
    pending = SimpleUploadedFile("again.csv", CSV.encode(), content_type="text/csv")
    supervisor_client.post("/contacts/import/", {"file": pending})
    assert ContactImportRow.objects.exists()

    # A click, followed to its end and wrapped up with notes that name them.
    click(agent_client, primary(contact))
    call = Call.objects.get()
    sim.clock.advance(70)
    poll(agent_client, call)
    notes = f"{NAME} asked to be called on 07400 900461 or {EMAIL}"
    disposition = DispositionCode.objects.get(code="Interested").pk
    agent_client.post(f"/calls/{call.pk}/wrapup/", {"disposition": disposition, "notes": notes}, headers=HTMX)
    call.refresh_from_db()
    assert call.state == "ended" and call.notes == notes

    # A call placed through the API, with an Idempotency-Key: its answer is kept.
    token = ApiToken.issue(agent_user, name="crm", scopes=["calls:write", "calls:read"])[1]
    answer = Client().post(
        "/api/v1/calls",
        json.dumps({"to": "07400 900461"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "crm-call-1"},
    )
    assert answer.status_code == 201, answer.content
    assert ApiIdempotentRequest.objects.get().response["to"] == MOBILE

    # The work number becomes do-not-call; VCC's raw events, a job's error, the admin's log and a receiver's echo.
    ContactPhone.objects.filter(number=WORK).update(do_not_call=True)
    now = timezone.now()
    VccEvent.objects.create(
        event_id="ev-1", type="channel.connected.v1", source="vcc", received_at=now, call=call,
        data={"interactionId": call.vcc_call_id, "to": MOBILE.lstrip("+"), "party": {"name": NAME}},
    )  # fmt: skip
    VccEvent.objects.create(
        event_id="ev-2", type="channel.ringing.v1", source="vcc", received_at=now, data={"from": WORK}
    )
    JobError.objects.create(job_id=1, task_name="apply_import", error=f"could not write {MOBILE}", at=now)
    LogEntry.objects.create(
        user=supervisor_user, content_type=ContentType.objects.get_for_model(Contact), object_id=str(contact.pk),
        object_repr=str(contact), action_flag=CHANGE, change_message="[]",
    )  # fmt: skip
    delivery.dispatch_all()
    first = WebhookDelivery.objects.filter(endpoint=hook).order_by("id").first()
    WebhookAttempt.objects.create(delivery=first, status_code=500, response_snippet=f"echo: {NAME} {EMAIL}")
    reports.refresh_rollup(now=now + timedelta(days=1))

    before_dump = dump()
    assert all(trace in before_dump for trace in (NAME, EMAIL, MOBILE, WORK, "07400 900461")), "seeded"
    before = figures(now)

    response = erase(supervisor_client, contact.pk)

    assert response.status_code == 302
    after_dump = dump()
    found = [trace for trace in TRACES if trace.lower() in after_dump.lower()]
    assert found == [], [line for line in after_dump.splitlines() if any(t.lower() in line.lower() for t in found)]
    assert figures(now) == before
    assert not Contact.objects.filter(pk=contact.pk).exists()
    assert set(Call.objects.values_list("to_number", flat=True)) == {mask_number(MOBILE)}
    assert set(Call.objects.values_list("contact_erased", flat=True)) == {True}
    assert WebhookEvent.objects.filter(type="contact.erased").get().payload["data"]["id"] == contact.pk
    assert ErasedNumber.objects.count() == 1 and erased_do_not_call(WORK) and not erased_do_not_call(MOBILE)
    assert CallRollup.objects.exists()


# --- The pages ------------------------------------------------------------------------------------------------------


@pytest.fixture
def person(db, agent_user) -> Contact:
    contact = Contact.objects.create(name=NAME, company="Quill & Co", email=EMAIL, notes="Prefers mornings")
    ContactPhone.objects.create(contact=contact, label="mobile", number=MOBILE, is_primary=True)
    ContactPhone.objects.create(contact=contact, label="work", number=WORK, do_not_call=True)
    return contact


@pytest.fixture
def their_calls(person, agent_user):
    calls = [
        make_call(user=agent_user, agent=agent_user.agent, contact=person, to_number=MOBILE, notes=f"Spoke to {NAME}")
        for _ in range(2)
    ]
    make_call(user=agent_user, agent=agent_user.agent, outcome="busy", contact=person, to_number=WORK)
    return calls


@pytest.mark.django_db
def test_the_confirm_page_says_what_goes_and_what_stays(supervisor_client, person, their_calls):
    page = supervisor_client.get(f"/contacts/{person.pk}/erase/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "What goes" in html and "What stays" in html
    assert "Their 2 numbers" in html and "3 calls" in html
    assert "do-not-call number stays blocked" in html
    assert 'method="post"' in html and "csrfmiddlewaretoken" in html
    assert Contact.objects.filter(pk=person.pk).exists()  # a GET erases nothing


@pytest.mark.django_db
def test_calls_stay_as_erased_contact_with_agent_times_outcome_and_duration(
    supervisor_client, supervisor_user, person, their_calls
):
    kept = list(Call.objects.order_by("pk").values("pk", "from_agent", "requested_at", "outcome", "duration_seconds"))
    Call.objects.filter(pk=their_calls[0].pk).update(hours_override_reason="Ann asked for a call at 22:00")
    response = erase(supervisor_client, person.pk)
    assert response.status_code == 302 and response.url == "/contacts/"
    assert (
        list(Call.objects.order_by("pk").values("pk", "from_agent", "requested_at", "outcome", "duration_seconds"))
        == kept
    )
    assert set(Call.objects.values_list("notes", flat=True)) == {""}
    assert set(Call.objects.values_list("hours_override_reason", flat=True)) == {""}
    assert set(Call.objects.values_list("contact", flat=True)) == {None}
    log = supervisor_client.get("/calls/").content.decode()
    assert "Erased contact" in log and NAME not in log and "+44 •••• ••0461" not in log
    assert mask_number(MOBILE) in log
    detail = supervisor_client.get(f"/calls/{their_calls[0].pk}/").content.decode()
    assert "Erased contact" in detail and "07400 900461" not in detail
    export = b"".join(supervisor_client.get("/calls/export.csv").streaming_content).decode("utf-8-sig")
    assert export.count("Erased contact") == 3 and NAME not in export and MOBILE not in export
    assert not ContactPhone.objects.exists()


@pytest.mark.django_db
def test_confirming_an_import_uploaded_before_the_erasure_does_not_bring_the_person_back(
    supervisor_client, person, settings, django_capture_on_commit_callbacks
):
    settings.CONTACT_IMPORT_BACKGROUND = False
    # A CRM's export: first and last name in columns of their own, the mobile as Excel keeps it (no leading 0);
    # row 3 is theirs with a problem (no parsed form, only its cells), row 4 someone else.
    csv = (
        "First name,Last name,Mobile,Email\n"
        "Perpetua,Quillfeather,7400900461,\n"
        "P.,Q.,7400900461,not an email\n"
        "Somebody,Else,07400 123456,\n"
    )
    upload = SimpleUploadedFile("pending.csv", csv.encode(), content_type="text/csv")
    imp = ContactImport.objects.get(pk=supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2])
    assert imp.report["duplicates"][0]["contact_name"] == NAME  # row 2 repeats the contact's number

    with django_capture_on_commit_callbacks(execute=True):
        assert erase(supervisor_client, person.pk).status_code == 302

    assert list(ContactImportRow.objects.values_list("number", flat=True)) == [4]
    assert not ContactImportKey.objects.filter(key=MOBILE).exists()
    imp.refresh_from_db()
    # Checked again without their rows: nothing in the preview names them, or counts them.
    assert imp.status == ContactImport.Status.PREVIEW
    assert (imp.report["rows"], imp.report["ready"], imp.report["duplicates"], imp.report["problems"]) == (1, 1, [], [])
    assert "Quillfeather" not in json.dumps(imp.report) and "7400" not in json.dumps(imp.report)
    supervisor_client.post(f"/contacts/import/{imp.pk}/confirm/", {"dup_2": "update", "rest": "update"})
    assert list(Contact.objects.values_list("name", flat=True)) == ["Somebody Else"]
    assert not ContactPhone.objects.filter(number=MOBILE).exists()


@pytest.mark.django_db
def test_a_check_that_read_rows_an_erasure_then_deleted_starts_again_and_counts_none_of_them(
    supervisor_client, supervisor_user, person, settings, monkeypatch
):
    """The erasure commits while the import's check is running: the check has read the person's row, and would
    name and count it in the preview. As it ends it sees that rows went, and checks the import again."""
    from django.utils import timezone

    from calls import imports
    from calls.privacy import erasure

    settings.CONTACT_IMPORT_BACKGROUND = False
    real = imports.with_duplicates
    erased: list[int] = []

    def erased_meanwhile(pk):
        if not erased:  # once, while the first check is under way (its status: checking)
            erased.append(person.pk)
            erasure.erase_contact(contact_pk=person.pk, by=supervisor_user, now=timezone.now())
        return real(pk)

    monkeypatch.setattr(imports, "with_duplicates", erased_meanwhile)
    csv = f"{CSV}Somebody Else,,07400 123456,\n"
    upload = SimpleUploadedFile("pending.csv", csv.encode(), content_type="text/csv")
    imp = ContactImport.objects.get(pk=supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2])

    assert erased == [person.pk]
    assert imp.status == ContactImport.Status.PREVIEW
    assert (imp.report["rows"], imp.report["ready"], imp.report["duplicates"]) == (1, 1, [])
    assert "Quillfeather" not in json.dumps(imp.report) and "900461" not in json.dumps(imp.report)


@pytest.mark.django_db
def test_an_import_left_with_none_of_its_rows_after_an_erasure_has_nothing_to_confirm(
    supervisor_client, person, settings, django_capture_on_commit_callbacks
):
    settings.CONTACT_IMPORT_BACKGROUND = False
    upload = SimpleUploadedFile("pending.csv", CSV.encode(), content_type="text/csv")
    imp = ContactImport.objects.get(pk=supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2])

    with django_capture_on_commit_callbacks(execute=True):
        erase(supervisor_client, person.pk)

    imp.refresh_from_db()
    assert imp.status == ContactImport.Status.PREVIEW and imp.report["rows"] == 0 and not imp.error
    supervisor_client.post(f"/contacts/import/{imp.pk}/confirm/", {"rest": "update"})
    assert not Contact.objects.exists()


@pytest.mark.django_db
def test_webhooks_announce_contact_erased_with_the_id_alone(supervisor_client, person):
    WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["contact.*"], secret="whsec_x")
    erase(supervisor_client, person.pk)
    event = WebhookEvent.objects.get(type="contact.erased")
    assert event.subject == f"contact:{person.pk}" and event.payload["data"]["id"] == person.pk
    assert NAME not in json.dumps(event.payload) and "contact.deleted" not in WebhookEvent.objects.values_list(
        "type", flat=True
    )


@pytest.mark.django_db
def test_only_supervisors_and_admins_may_erase(client, agent_client, person):
    assert client.get(f"/contacts/{person.pk}/erase/").status_code == 302
    assert agent_client.get(f"/contacts/{person.pk}/erase/").status_code == 403
    assert erase(agent_client, person.pk).status_code == 403
    assert Contact.objects.filter(pk=person.pk).exists()


@pytest.mark.django_db
def test_erasing_a_contact_that_is_gone_is_a_404(supervisor_client):
    assert erase(supervisor_client, 999999).status_code == 404


@pytest.mark.django_db
def test_the_contact_page_links_to_erase_and_to_their_data_for_supervisors_only(
    supervisor_client, agent_client, person
):
    page = supervisor_client.get(f"/contacts/{person.pk}/").content.decode()
    assert f"/contacts/{person.pk}/erase/" in page and f"/contacts/{person.pk}/data/" in page
    page = agent_client.get(f"/contacts/{person.pk}/").content.decode()
    assert "/erase/" not in page and f"/contacts/{person.pk}/data/" not in page


@pytest.fixture
def erased_while_vcc_is_asked(supervisor_client, person, monkeypatch):
    """The erasure of the person commits while VCC is asked to place a click."""
    from calls.vcc import AsyncVCCClient

    real = AsyncVCCClient.place_call

    async def erased_while_asked(self, request):
        assert (await sync_to_async(erase)(supervisor_client, person.pk)).status_code == 302
        return await real(self, request)

    monkeypatch.setattr(AsyncVCCClient, "place_call", erased_while_asked)


@pytest.mark.django_db
def test_a_click_vcc_answers_after_an_erasure_announces_and_keeps_only_the_masked_number(
    agent_user, person, london, sim, erased_while_vcc_is_asked
):
    """The events VCC's answer makes, and the answer the API keeps for the key, are written after the erasure, and
    must not bring the number back."""
    WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_x")
    token = ApiToken.issue(agent_user, name="crm", scopes=["calls:write"])[1]

    response = Client().post(
        "/api/v1/calls",
        json.dumps({"to": MOBILE}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"},
    )

    assert response.status_code == 201, response.content
    assert response.json()["to"] == mask_number(MOBILE) and response.json()["contact"] is None
    placed = WebhookEvent.objects.get(type="call.placed")
    assert placed.payload["data"]["to"] == mask_number(MOBILE) and placed.payload["data"]["contact"] is None
    kept = json.dumps(list(ApiIdempotentRequest.objects.values_list("response", flat=True)))
    events = json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))
    assert MOBILE not in kept and MOBILE not in events
    assert sim.calls_placed == 1


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["dialer", "list-call"])
def test_a_click_vcc_answers_after_an_erasure_shows_the_panel_with_the_masked_number(
    agent_client, person, london, sim, erased_while_vcc_is_asked, target
):
    response = click(agent_client, primary(person), target=target)

    assert response.status_code == 200
    page = response.content.decode()
    assert mask_number(MOBILE) in page and "900461" not in page.replace(mask_number(MOBILE), "")


@pytest.mark.django_db
def test_vccs_refusal_of_a_click_after_an_erasure_is_kept_without_the_number_it_quotes(
    agent_client, supervisor_client, person, london, sim, monkeypatch
):
    """VCC's own words are kept verbatim, and may quote the number: written after the erasure, they are masked."""
    from calls.vcc import AsyncVCCClient, VCCError

    async def erased_then_refused(self, request):
        assert (await sync_to_async(erase)(supervisor_client, person.pk)).status_code == 302
        raise VCCError(f"telephoneNumber '{MOBILE}' is not a valid number", status=400, user_message=f"No: {MOBILE}")

    monkeypatch.setattr(AsyncVCCClient, "place_call", erased_then_refused)
    WebhookEndpoint.objects.create(url="https://hooks.example.com/in", event_types=["*"], secret="whsec_x")

    response = click(agent_client, primary(person))

    assert response.status_code == 200
    call = Call.objects.get()
    assert call.state == Call.State.FAILED
    assert call.error_message == f"telephoneNumber '{mask_number(MOBILE)}' is not a valid number"
    assert call.error_display == f"No: {mask_number(MOBILE)}"
    kept = [call.error_message, call.error_display, *call.events.values_list("detail", flat=True)]
    events = json.dumps(list(WebhookEvent.objects.values_list("payload", flat=True)))
    assert not any("900461" in text for text in kept) and "900461" not in events
    assert "900461" not in response.content.decode().replace(mask_number(MOBILE), "")


# --- An erased do-not-call number ----------------------------------------------------------------------------------


@pytest.fixture
def erased(supervisor_client, person):
    erase(supervisor_client, person.pk)
    return person


@pytest.mark.django_db
def test_an_erased_do_not_call_number_cannot_be_called_with_the_call_button(agent_client, erased, london, sim):
    again = Contact.objects.create(name="Somebody New")
    phone = ContactPhone.objects.create(contact=again, number=WORK, is_primary=True)
    assert phone.do_not_call  # added again: do-not-call at once
    ContactPhone.objects.filter(pk=phone.pk).update(do_not_call=False)  # even with the flag gone (raw SQL)

    response = click(agent_client, phone)

    assert response.status_code == 400
    assert "do not call" in response.content.decode()
    assert not Call.objects.filter(to_number=WORK).exists() and sim.calls_placed == 0


@pytest.mark.django_db
def test_an_erased_do_not_call_number_cannot_be_called_through_the_api(agent_user, erased, london, sim):
    again = Contact.objects.create(name="Somebody New")
    ContactPhone.objects.create(contact=again, number=WORK, is_primary=True)
    ContactPhone.objects.filter(number=WORK).update(do_not_call=False)
    token = ApiToken.issue(agent_user, name="crm", scopes=["calls:write"])[1]

    response = Client().post(
        "/api/v1/calls",
        json.dumps({"to": WORK}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"},
    )

    assert response.status_code in (403, 409, 422), response.content
    assert "do not call" in response.json()["detail"]
    assert sim.calls_placed == 0


@pytest.mark.django_db
def test_an_import_that_adds_an_erased_do_not_call_number_makes_it_do_not_call_at_once(
    supervisor_client, erased, settings
):
    settings.CONTACT_IMPORT_BACKGROUND = False
    csv = "Name,Mobile,Work phone\nA New Person,07400 900461,020 7946 0818\n"
    upload = SimpleUploadedFile("new.csv", csv.encode(), content_type="text/csv")
    imp = supervisor_client.post("/contacts/import/", {"file": upload}).url.split("/")[-2]
    supervisor_client.post(f"/contacts/import/{imp}/confirm/")

    phones = dict(ContactPhone.objects.filter(contact__name="A New Person").values_list("number", "do_not_call"))
    assert phones == {WORK: True, MOBILE: False}  # the mobile was not do-not-call: nothing to keep


@pytest.mark.django_db
def test_the_hash_is_keyed_and_holds_no_number(erased, settings):
    digest = ErasedNumber.objects.get().digest
    assert WORK not in digest and "0818" not in digest and len(digest) == 64
    settings.ERASURE_HASH_KEY = "another key"
    assert not erased_do_not_call(WORK)  # without the key, the number cannot be checked


# --- A subject's data ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_supervisor_downloads_everything_held_about_the_contact_as_json(supervisor_client, person, their_calls):
    call = their_calls[0]
    call.record_wrap_up(code="Sale", notes=f"{NAME} bought two", now=timezone.now(), confirmed=True)

    response = supervisor_client.get(f"/contacts/{person.pk}/data/?format=json")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="contact-{person.pk}-data.json"'
    data = json.loads(response.content)
    assert data["contact"]["name"] == NAME and data["contact"]["email"] == EMAIL
    assert data["contact"]["notes"] == "Prefers mornings"
    assert {n["number"] for n in data["numbers"]} == {MOBILE, WORK}
    assert [c["id"] for c in data["calls"]] == sorted(c.pk for c in Call.objects.all())
    wrapped = next(c for c in data["calls"] if c["id"] == call.pk)
    assert wrapped["wrap_up"] == {
        "disposition": "Sale",
        "notes": f"{NAME} bought two",
        "wrapped_up_at": wrapped["wrap_up"]["wrapped_up_at"],
    }
    assert any(item["what"] == "Wrap-up" for item in wrapped["history"])
    # The audit trail's entries about them (PostgreSQL's triggers write them; SQLite has none), oldest first.
    from django.db import connection

    kinds = [entry["kind"] for entry in data["audit_entries"]]
    if connection.vendor == "postgresql":
        assert kinds[0] == "contact.create" and "number.create" in kinds and kinds[-1] == "call.update"
        assert data["audit_entries"][-1]["after"] == {"disposition_code": "Sale", "notes": f"{NAME} bought two"}


@pytest.mark.django_db
def test_the_same_data_as_a_page_people_can_read(supervisor_client, person, their_calls):
    page = supervisor_client.get(f"/contacts/{person.pk}/data/")
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert NAME in html and "Prefers mornings" in html and MOBILE in html
    assert html.count('class="subject-call"') == 3
    assert "Download as JSON" in html


@pytest.mark.django_db
def test_agents_may_not_download_a_contacts_data(client, agent_client, person):
    assert client.get(f"/contacts/{person.pk}/data/").status_code == 302
    assert agent_client.get(f"/contacts/{person.pk}/data/").status_code == 403
    assert agent_client.get(f"/contacts/{person.pk}/data/?format=json").status_code == 403


@pytest.mark.django_db
def test_their_data_rejects_post_and_a_missing_contact(supervisor_client, person):
    assert supervisor_client.post(f"/contacts/{person.pk}/data/").status_code == 405
    assert supervisor_client.get("/contacts/999999/data/").status_code == 404

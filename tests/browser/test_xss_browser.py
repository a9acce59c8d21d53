"""Stored and reflected script: payloads in every text a person can enter, and nothing runs on any page showing them.

Payloads go in through the app's own forms where a person types them (a new contact, a wrap-up's notes) and
through the ORM for the rest (what admins type in the admin, what VCC sends back). Then Chromium opens every page
that shows them, as the people who see them, and each page must show:

- nothing ran: `window.__xss` is undefined and no dialog opened;
- nothing was injected: no element carries an inline event handler, no inline script mentions the payload, no
  `javascript:` link, no frame;
- the CSP had nothing to block (a `securitypolicyviolation` would mean markup got through escaping) and the console
  has no errors.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone

from calls import calling
from calls.models import (
    Agent,
    AgentGroup,
    Call,
    CallbackNumber,
    ConsentRule,
    Contact,
    ContactPhone,
    DispositionCode,
    SyncRun,
)
from calls.roles import ADMIN, AGENT, SUPERVISOR, assign_role
from tests._sim import fresh_simulator
from tests.browser.conftest import log_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAYLOADS = [
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    '"><svg onload=window.__xss=1>',
    "'><svg onload=window.__xss=1>",
    "javascript:window.__xss=1",
    '<a href="javascript:window.__xss=1">link</a>',
    "</textarea><script>window.__xss=1</script>",
    "</title><script>window.__xss=1</script>",
    '<iframe srcdoc="<script>parent.__xss=1</script>"></iframe>',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__xss=1>",
    "{{ request }}{% csrf_token %}<b>bold</b>",
]
SHORT = PAYLOADS[1]  # 34 characters: fits where little does


def payload(max_length: int | None = None) -> str:
    """As many payloads as fit in a field of max_length."""
    if max_length is None:
        return " ".join(PAYLOADS)
    text = ""
    for p in PAYLOADS:
        if len(text) + len(p) + 1 <= max_length:
            text = f"{text} {p}" if text else p
    return text or SHORT[:max_length]


def fits(model, field: str) -> str:
    return payload(model._meta.get_field(field).max_length)


WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', e => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`);
});
"""

SETTLED = """
() => document.readyState === 'complete'
  && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')
"""

INJECTED = """
() => {
  const found = [];
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      if (attr.name.startsWith('on')) found.push(`${el.tagName} ${attr.name}=${attr.value}`);
      if (['href', 'src', 'action', 'formaction', 'xlink:href'].includes(attr.name)
          && attr.value.trim().toLowerCase().startsWith('javascript:')) {
        found.push(`${el.tagName} ${attr.name}=${attr.value}`);
      }
    }
  }
  for (const s of document.querySelectorAll('script')) {
    if (s.textContent.includes('__xss')) found.push('inline script: ' + s.textContent.slice(0, 80));
  }
  for (const f of document.querySelectorAll('iframe, frame, object, embed')) found.push(f.outerHTML.slice(0, 80));
  return found;
}
"""


@pytest.fixture
def sim():
    yield from fresh_simulator()


@pytest.fixture
def payloads_stored(db, sim):
    """Every text a person (or VCC) can put in the database, holding payloads. Returns what the pages need."""
    User = get_user_model()
    name = fits(User, "first_name")

    def person(username: str, role: str, display_id: str | None, **extra) -> object:
        user = User.objects.create_user(username=username, password=PASSWORD, first_name=name, last_name=name, **extra)
        assign_role(user, role)
        if display_id:
            Agent.objects.create(display_id=display_id, name=fits(Agent, "name"), user=user)
        return user

    agent = person("alex", AGENT, "1001", email="alex@example.com")
    supervisor = person("priya", SUPERVISOR, "1002")
    person("ada", ADMIN, None)
    colleague = person(SHORT, AGENT, "1003")  # a username only the ORM would accept

    group = AgentGroup.objects.create(display_id="030", name=fits(AgentGroup, "name"))
    group.members.set(Agent.objects.all())
    number = CallbackNumber.objects.create(
        number="+442079460100", label=fits(CallbackNumber, "label"), is_default=True, vcc_callback_number_id=SHORT
    )
    listed_for_nobody = {"vcc_listing_synced_at": timezone.now()}  # the health page names it
    CallbackNumber.objects.create(number="+441614960200", label=fits(CallbackNumber, "label"), **listed_for_nobody)
    Agent.objects.filter(pk=agent.agent.pk).update(default_callback_number=number, default_group=group)
    DispositionCode.objects.create(code=SHORT, description=fits(DispositionCode, "description"), position=0)
    ConsentRule.objects.update_or_create(
        country="GB", defaults={"consent": "OneParty", "note": fits(ConsentRule, "note")}
    )
    now = timezone.now()
    SyncRun.objects.create(started_at=now, finished_at=now, by=supervisor, lines=PAYLOADS, error="")
    SyncRun.objects.create(started_at=now - timedelta(hours=1), finished_at=now, dry_run=True, error=payload())

    contact = Contact.objects.create(
        name=fits(Contact, "name"),
        company=fits(Contact, "company"),
        email=payload(Contact._meta.get_field("email").max_length),
        notes=payload(),
        owner=agent,
        do_not_call=False,
    )
    mobile = ContactPhone.objects.create(contact=contact, number="+447400123456", is_primary=True)
    ContactPhone.objects.create(contact=contact, number="+442079460123", label="work", do_not_call=True)

    texts = {  # every free text of a call: what the clicker typed, what VCC answered, what the app wrote
        f.name: fits(Call, f.name) if isinstance(f, models.CharField) else payload()
        for f in Call._meta.get_fields()
        if isinstance(f, models.CharField | models.TextField) and not f.choices and f.name != "to_number"
    }
    common = {"contact": contact, "phone": mobile, "to_number": mobile.number, "created_by": agent, **texts}
    ids = iter(range(100))

    def vcc_id() -> dict[str, str]:  # unique per call
        return {"vcc_call_id": f"{SHORT}{next(ids)}"}

    wrapped = Call.objects.create(
        **common | vcc_id(), from_agent=agent.agent, state=Call.State.ENDED, outcome="answered", wrapped_up_at=now
    )
    to_wrap = Call.objects.create(
        **{**common, "notes": "", "disposition_code": "", "vcc_call_id": ""},
        from_agent=agent.agent,
        state=Call.State.ENDED,
    )
    failed = Call.objects.create(**common | vcc_id(), from_agent=agent.agent, state=Call.State.FAILED, outcome="failed")
    by_group = Call.objects.create(**common | vcc_id(), state=Call.State.ENDED, outcome="no_answer")
    by_group.from_groups.set([group])
    to_colleague = Call.objects.create(
        **{**common, **vcc_id(), "contact": None, "phone": None, "to_number": ""},
        from_agent=agent.agent,
        to_agent=colleague.agent,
        state=Call.State.ENDED,
    )
    return {
        "contact": contact,
        "wrapped": wrapped,
        "to_wrap": to_wrap,
        "failed": failed,
        "to_colleague": to_colleague,
        "colleague": colleague,
        "number": number,
        "group": group,
    }


class Watched:
    """A logged-in browser page that records dialogs and CSP violations, and checks each page it opens."""

    def __init__(self, page, live_server) -> None:
        self.page, self.base = page, live_server.url
        self.dialogs: list[str] = []
        self.visited = 0
        page.add_init_script(WATCH)
        # A call panel opened on its own (the fragment htmx polls) has no icon link: the browser asks for this.
        page.route("**/favicon.ico", lambda route: route.fulfill(status=204))
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))

    def open(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None and response.status < 400, f"{path} answered {response and response.status}"
        self.check(path)

    def check(self, where: str, *, shows_payload: bool = True) -> None:
        page = self.page
        # Until the page and its images have loaded (an onerror handler would have run by then) and no htmx request
        # is in flight or settling; then one more task, for violation reports queued meanwhile.
        page.wait_for_function(SETTLED)
        page.evaluate("() => new Promise(resolve => setTimeout(resolve, 0))")
        assert page.evaluate("typeof window.__xss") == "undefined", f"a payload ran on {where}"
        assert page.evaluate("typeof window.parent.__xss") == "undefined", f"a payload ran on {where}"
        assert not self.dialogs, f"a dialog opened on {where}: {self.dialogs}"
        assert page.evaluate(INJECTED) == [], f"markup was injected on {where}"
        assert page.evaluate("window.__violations") == [], f"the CSP blocked something on {where}"
        assert page.console_errors == [], f"console errors on {where}: {page.console_errors}"
        if shows_payload:  # the page did show a stored payload, as text or a form value
            assert "__xss" in page.content(), f"{where} shows no payload: the test would prove nothing there"
        self.visited += 1


def test_payloads_typed_into_the_contact_form_and_the_wrap_up_never_run(page, live_server, payloads_stored):
    watched = Watched(page, live_server)
    log_in(page, live_server, "alex", PASSWORD)
    watched.check("the contact list after logging in")

    page.goto(f"{live_server.url}/contacts/new/")
    page.fill("#id_name", payload(200))
    page.fill("#id_company", payload(200))
    page.fill("#id_notes", payload())
    page.fill("#id_phones-0-number", "020 7946 0999")
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/contacts/\d+/$"))  # the new contact's page (a glob matches /contacts/new/ too)
    watched.check("the new contact's page and its 'Saved' message")
    created = Contact.objects.exclude(pk=payloads_stored["contact"].pk).get()
    assert created.name == payload(200)

    to_wrap = payloads_stored["to_wrap"]
    page.goto(f"{live_server.url}/contacts/{to_wrap.contact_id}/?call={calling.regarding_token(to_wrap)}")
    watched.check("the contact page with the call to wrap up")
    panel = page.locator(f"#call-panel-{to_wrap.pk}")
    panel.locator("select[name=disposition]").select_option(label=SHORT)
    panel.locator("textarea[name=notes]").fill(payload())
    panel.locator("button", has_text="Save wrap-up").click()
    page.locator(f"#call-panel-{to_wrap.pk}", has_text="Wrapped up").wait_for()
    watched.check("the call panel swapped in by htmx after the wrap-up")
    to_wrap.refresh_from_db()
    assert to_wrap.notes == payload()

    for path in [
        f"/calls/{to_wrap.pk}/panel/?edit=1",  # the notes back in a textarea
        f"/calls/{payloads_stored['wrapped'].pk}/panel/",
        f"/contacts/{created.pk}/edit/",
        "/agents/",
        f"/agents/?call={calling.regarding_token(payloads_stored['to_colleague'])}",
    ]:
        watched.open(path)
    assert watched.visited == 9


def test_stored_payloads_never_run_on_the_pages_that_show_them(page, live_server, payloads_stored):
    watched = Watched(page, live_server)
    log_in(page, live_server, "priya", PASSWORD, at=None)  # a supervisor sees everyone's calls, groups and health
    contact = payloads_stored["contact"]
    token = calling.regarding_token
    for path in [
        "/contacts/",
        f"/contacts/?q={SHORT}",  # reflected in the search box
        '/contacts/?q="><svg onload=window.__xss=1>',
        f"/contacts/{contact.pk}/",  # the timeline, the numbers, the caller IDs and groups to call with
        f"/contacts/{contact.pk}/?call={token(payloads_stored['failed'])}",  # VCC's error message in the panel
        f"/contacts/{contact.pk}/?call={token(payloads_stored['wrapped'])}",
        f"/contacts/{contact.pk}/edit/",
        f"/contacts/{contact.pk}/delete/",
        f"/calls/{payloads_stored['failed'].pk}/panel/",
        f"/calls/{payloads_stored['failed'].pk}/",  # the call page: everything stored on the call
        f"/calls/{payloads_stored['wrapped'].pk}/",
        "/calls/",  # the call log: names, numbers, outcomes
        "/reports/",  # dispositions, caller IDs, VCC's reasons, in tables and charts
        "/agents/",
        "/health/",
    ]:
        watched.open(path)
    watched.open(f"/contacts/{contact.pk}/?call={SHORT}")  # a damaged call link: its message, not the link
    assert watched.visited == 16


ADMIN_PAGES = [
    "/admin/",
    "/admin/calls/contact/",
    "/admin/calls/contact/{contact}/change/",
    "/admin/calls/contactphone/",
    "/admin/calls/agent/",
    "/admin/calls/agent/{agent}/change/",
    "/admin/calls/agentgroup/",
    "/admin/calls/agentgroup/{group}/change/",
    "/admin/calls/callbacknumber/",
    "/admin/calls/callbacknumber/{number}/change/",
    "/admin/calls/call/",
    "/admin/calls/call/{call}/change/",
    "/admin/calls/dispositioncode/",
    "/admin/calls/consentrule/",
    "/admin/calls/syncrun/",
    "/admin/calls/syncrun/{sync_run}/change/",
    "/admin/calls/syncrun/run/",
    "/admin/auth/user/",
    "/admin/auth/user/{user}/change/",
    "/admin/calls/contact/?q={short}",
]


def test_stored_payloads_never_run_in_the_admin(page, live_server, payloads_stored):
    watched = Watched(page, live_server)
    log_in(page, live_server, "ada", PASSWORD, at=None)
    ids = {
        "contact": payloads_stored["contact"].pk,
        "agent": payloads_stored["colleague"].agent.pk,
        "group": payloads_stored["group"].pk,
        "number": payloads_stored["number"].pk,
        "call": payloads_stored["failed"].pk,
        "sync_run": SyncRun.objects.filter(dry_run=False).get().pk,
        "user": payloads_stored["colleague"].pk,
        "short": SHORT,
    }
    for path in ADMIN_PAGES:
        watched.open(path.format(**ids))
    assert watched.visited == len(ADMIN_PAGES)


def test_payloads_in_an_imported_file_never_run_in_its_preview(page, live_server, payloads_stored, settings):
    import csv
    import io

    settings.CONTACT_IMPORT_BACKGROUND = False  # checked in the request, so the preview is ready at once
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["Name", "Company", "Email", "Phone", SHORT])  # an unknown column named by a payload
    writer.writerow([payload(200), payload(200), payload(200), "020 7946 0888", payload()])  # the email: a problem
    writer.writerow([SHORT, "Cobalt", "ok@example.com", payload(100), ""])  # the number: a problem
    writer.writerow([payload(200), "Again", "", "020 7946 0888", ""])  # a duplicate of the first row's number
    watched = Watched(page, live_server)
    log_in(page, live_server, "alex", PASSWORD, at="/contacts/import/")

    page.fill("textarea[name=text]", rows.getvalue())
    page.click("button:has-text('Check the file')")
    page.wait_for_url(f"{live_server.url}/contacts/import/*/")
    watched.check("the import's preview: problems and duplicates quoting the file")
    assert "020 7946 0888" in page.content()

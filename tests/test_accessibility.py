"""Accessibility of the pages agents, supervisors and admins use daily, read from their HTML (WCAG 2.2 AA): what a
screen reader is told and when, and what each field is tied to. tests/browser/test_accessibility_browser.py has what
takes a browser (the keyboard's focus)."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.utils import timezone

from calls import charts
from calls.models import Agent, Call
from tests._calls import make_call
from tests._sim import HTMX, click, fresh_simulator, poll, primary
from tests.test_contacts import phone_data
from tests.test_queue_pages import _start, acme, queue  # noqa: F401  (the fixtures)

pytestmark = pytest.mark.django_db

CONNECTED = 9  # clock seconds after placing: the agent, then the contact, answered
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@pytest.fixture(autouse=True)
def sim(monkeypatch):
    yield from fresh_simulator(monkeypatch)


class Element:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Element | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.text = ""

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


class Tree(HTMLParser):
    """Every element of a page with its parent: enough to ask what an element sits in."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self.open: Element | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {name: value or "" for name, value in attrs}, self.open)
        self.elements.append(element)
        if tag not in VOID:
            self.open = element

    def handle_data(self, data):
        node = self.open
        while node is not None:
            node.text += data
            node = node.parent

    def handle_endtag(self, tag):
        node = self.open
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None:
            self.open = node.parent

    def by_id(self, id_: str) -> Element:
        (found,) = [e for e in self.elements if e.attrs.get("id") == id_]
        return found


def page(response) -> Tree:
    assert response.status_code in (200, 400), response.status_code
    return Tree(response.content.decode())


def live_region(element: Element) -> Element | None:
    """The live region the element is in (itself included), if any: a change inside it is read out."""
    for node in (element, *element.ancestors()):
        if node.attrs.get("aria-live", "off") != "off" or node.attrs.get("role") in {"status", "alert", "log"}:
            return node
    return None


# --- The call panel: polled, its talk timer ticking, so never inside a live region --------------------------------


def test_the_polled_call_panel_is_not_read_out_at_each_poll_and_tick(agent_client, contact, london, sim):
    """The panel is swapped every 2 s and its talk timer changes every second: in a live region a screen reader reads
    the whole panel again at each poll and the timer at each tick. A steady status region outside it says the phase,
    once each time it changes (static/js/app.js), on each page the panel appears on."""
    answer = click(agent_client, primary(contact), target="call-slot")
    call = Call.objects.get()
    sim.clock.advance(CONNECTED)
    panel = page(poll(agent_client, call))
    assert [e for e in panel.elements if "data-talk-since" in e.attrs]  # connected: the timer ticks
    for part in (page(answer), panel):
        for element in part.elements:
            if "every" in element.attrs.get("hx-trigger", "") or "data-talk-since" in element.attrs:
                assert live_region(element) is None, element.attrs

    slots = {
        f"/contacts/{contact.pk}/": "call-slot",  # the contact page's Call buttons answer into these
        "/contacts/": "list-call",
        "/agents/": "agent-call",
    }
    for url, slot in slots.items():
        tree = page(agent_client.get(url))
        assert live_region(tree.by_id(slot)) is None, url
        announcer = tree.by_id("call-announcer")
        assert announcer.attrs.get("role") == "status", url
        assert live_region(announcer.parent) is None, url


# --- Polled parts keep the keyboard's focus -----------------------------------------------------------------------


def focusable(element: Element) -> bool:
    tag, attrs = element.tag, element.attrs
    if tag == "input":
        return attrs.get("type") != "hidden"
    return tag in {"button", "select", "textarea", "summary"} or (tag == "a" and "href" in attrs)


def lost_on_swap(tree: Tree) -> list[dict[str, str]]:
    """What can take the focus and would lose it at the part's next swap: htmx gives the focus back to the element
    of the same id after a swap (or keeps an hx-preserve element, with its id), and to nothing else."""
    return [
        element.attrs
        for element in tree.elements
        if focusable(element)
        and "id" not in element.attrs
        and not any("hx-preserve" in node.attrs and "id" in node.attrs for node in element.ancestors())
    ]


def test_the_parts_that_refresh_themselves_give_the_focus_back(agent_client, agent_user, contact, london, sim):
    """The call panel and the call bar are swapped every 2 s while a call goes on: a keyboard user on Pause
    recording, or on the bar's link, lost the focus to the page's top at the next swap."""
    make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact)  # to wrap up, in the bar
    click(agent_client, primary(contact))
    call = Call.objects.filter(state="live").get()
    sim.clock.advance(CONNECTED)
    panel = page(poll(agent_client, call))
    bar = page(agent_client.get("/calls/bar/", headers=HTMX))
    assert [e for e in panel.elements if e.tag == "button" and e.attrs.get("name") == "recording"]
    assert [e for e in bar.elements if e.tag == "button" and e.attrs.get("name") == "recording"]
    assert [e for e in bar.elements if e.tag == "select" and e.attrs.get("name") == "disposition"]
    assert lost_on_swap(panel) == []
    assert lost_on_swap(bar) == []


def test_the_queue_bar_gives_the_focus_back_at_each_refresh(agent_client, queue, acme):  # noqa: F811
    """The queue bar refreshes itself every 10 s: Next contact, Skip, Stop and the box that opens the next contact."""
    _start(agent_client, queue)
    fresh = page(agent_client.get(f"/queues/{queue.pk}/bar/?contact={acme[0].pk}", headers=HTMX))
    assert [e for e in fresh.elements if e.tag == "button" and "data-shortcut-queue" in e.attrs]
    assert lost_on_swap(fresh) == []


def test_the_contact_timeline_gives_the_focus_back_when_it_reloads(agent_client, agent_user, contact, monkeypatch):
    """The timeline reloads itself whenever a call changes (calls-changed): a keyboard user on one of its links (a
    call's details, the call log, older calls) lost the focus to the page's top. Its links have ids, unique on the
    page, on the newest calls and on older ones."""
    from calls.views import contacts

    monkeypatch.setattr(contacts, "TIMELINE_LENGTH", 2)
    for hours in (1, 2, 3):
        make_call(user=agent_user, agent=Agent.objects.get(user=agent_user), contact=contact,
                  at=timezone.now() - timedelta(hours=hours))  # fmt: skip
    timeline = {"HX-Request": "true", "HX-Target": "timeline"}
    newest = page(agent_client.get(f"/contacts/{contact.pk}/", headers=timeline))
    older_url = newest.by_id("timeline-older").attrs["href"]
    older = page(agent_client.get(older_url, headers=timeline))
    for part in (newest, older):
        assert len([e for e in part.elements if e.tag == "a"]) >= 4  # the call log, and each call's own links
        assert lost_on_swap(part) == []
    assert older.by_id("timeline-newest")
    whole = page(agent_client.get(f"/contacts/{contact.pk}/"))
    ids = [e.attrs["id"] for e in whole.elements if "id" in e.attrs]
    assert len(ids) == len(set(ids))
    assert whole.by_id("timeline-log") and whole.by_id("timeline-older")


# --- Form fields: their help and their errors tied to them ---------------------------------------------------------


def described(tree: Tree, field: Element) -> str:
    """What a screen reader reads as the field's description: the text of the elements its aria-describedby names."""
    ids = field.attrs.get("aria-describedby", "").split()
    found = {e.attrs["id"]: e for e in tree.elements if e.attrs.get("id") in ids}
    assert sorted(found) == sorted(ids), f"{field.attrs.get('name')} names ids the page lacks: {ids}"
    return " ".join(found[i].text for i in ids)


def test_a_contact_forms_errors_and_help_are_read_with_their_fields(agent_client):
    """Django marks a field with an error aria-invalid and names its error and help by id in aria-describedby: the
    form's own markup drew them without those ids, so a screen reader said "invalid" and not what to fix."""
    data = {"name": "", "email": "", **phone_data({"label": "mobile", "number": "not a number"})}
    tree = page(agent_client.post("/contacts/new/", data))
    invalid = {e.attrs["name"]: e for e in tree.elements if e.attrs.get("aria-invalid") == "true"}
    assert set(invalid) == {"name", "phones-0-number"}
    assert "required" in described(tree, invalid["name"])
    assert "number" in described(tree, invalid["phones-0-number"]).lower()
    assert "do-not-call" in described(tree, tree.by_id("id_do_not_call")).lower()


@pytest.mark.parametrize("url", ["/contacts/import/", "/queues/new/"])
def test_the_import_and_queue_forms_help_is_read_with_its_fields(supervisor_client, url):
    tree = page(supervisor_client.get(url))
    fields = [e for e in tree.elements if "aria-describedby" in e.attrs]
    assert fields
    for field in fields:
        assert described(tree, field).strip()


def test_a_wrap_up_refused_for_a_field_marks_that_field_ties_the_message_to_it_and_focuses_it(
    agent_client, contact, london, sim
):
    """A callback time gone by: the alert at the panel's top says what to fix; the field itself says it is the one
    (aria-invalid, described by the alert) and takes the focus once htmx swaps the panel in (autofocus)."""
    from calls.models import DispositionCode
    from tests._sim import place_call

    call = place_call(agent_client, contact)
    sim.clock.advance(100)
    poll(agent_client, call)
    data = {"disposition": DispositionCode.objects.get(code="Call back later").pk, "callback_at": "2020-01-01T09:00"}

    panel = agent_client.post(f"/calls/{call.pk}/wrapup/", data, headers=HTMX).content.decode()

    assert f'<p class="error" role="alert" id="call-error-{call.pk}">' in panel
    described = f'aria-invalid="true" aria-describedby="call-error-{call.pk}" autofocus'
    assert panel.count(described) == 1
    assert f'name="callback_at" value="2020-01-01T09:00" data-callback-at {described}>' in panel


def app_css() -> str:
    from django.conf import settings

    return (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()


def css_colour(css: str, value: str) -> str:
    """A colour of app.css as #rrggbb: written as #rgb or #rrggbb, or a custom property of its :root."""
    if found := re.fullmatch(r"var\((--[a-z-]+)\)", value.strip()):
        value = re.search(rf"{found[1]}: (#[0-9a-f]+);", css)[1]
    digits = re.fullmatch(r"#([0-9a-f]{6}|[0-9a-f]{3})", value.strip())[1]
    return "#" + (digits if len(digits) == 6 else "".join(d * 2 for d in digits))


def contrast(one: str, other: str) -> float:
    """WCAG's contrast ratio of two #rrggbb colours, from their relative luminance."""

    def luminance(hex_colour: str) -> float:
        rgb = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_a_text_fields_edge_stands_out_from_the_white_it_sits_on():
    """WCAG 1.4.11: what identifies a field (its border) needs 3:1 against what is beside it; #dde1e8 had 1.31."""
    css = app_css()
    rule = re.search(r"^input, select, textarea \{([^}]*)\}", css, re.M).group(1)
    name = re.search(r"border: 1px solid var\((--[a-z-]+)\)", rule).group(1)
    colour = re.search(rf"{name}: (#[0-9a-f]{{6}})", css).group(1)

    for beside in ("#ffffff", "#f6f7f9"):  # the field and the card; the page's background
        ratio = contrast(colour, beside)
        assert ratio >= 3, f"{colour} on {beside}: {ratio:.2f}:1"


@pytest.mark.parametrize("look", sorted(set(charts.OUTCOME_LOOK.values())))
def test_each_segment_of_the_outcome_bar_stands_out_from_the_white_card_and_its_swatch_matches(look):
    """WCAG 1.4.11: each outcome's share is told by its segment, which needs 3:1 against what is beside it: the
    white card, and the white line that parts it from the next segment. Amber (#d99a16) and grey (#9aa1b0) had 2.4
    and 2.6. The table's swatch (the legend) has the segment's colour."""
    css = app_css()
    rule = dict(re.findall(r"(fill|background): ([^;]+);", re.search(rf"^\.share-{look} \{{([^}}]*)\}}", css, re.M)[1]))
    segment, swatch = css_colour(css, rule["fill"]), css_colour(css, rule["background"])
    assert swatch == segment
    card = css_colour(css, "var(--card)")
    assert card == "#ffffff"
    assert contrast(segment, card) >= 3, f"{look}: {segment} on {card}: {contrast(segment, card):.2f}:1"
    parting = re.search(r"^\.chart\.shares \.share \{([^}]*)\}", css, re.M)[1]
    assert "stroke: var(--card);" in parting  # so the next segment is not what it is told from


@pytest.mark.parametrize(
    ("who", "path", "found"),
    [
        ("agent", "/contacts/?q=Zzyzx", "No contact matches"),
        ("supervisor", "/calls/", "No calls match these filters"),
        ("admin", "/audit/?kind=lockout.lift", "No entries match"),
    ],
)
def test_the_lists_results_are_in_no_live_region_and_carry_a_few_words_for_the_status(
    who, path, found, agent_client, supervisor_client, admin_role_user
):
    from django.test import Client

    clients = {"agent": agent_client, "supervisor": supervisor_client, "admin": Client()}
    clients["admin"].force_login(admin_role_user)
    page = clients[who].get(path).content.decode()

    assert '<p id="results-status" class="visually-hidden" role="status"></p>' in page
    assert f'<div id="results" data-status="{found}">' in page

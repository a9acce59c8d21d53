"""Search and the contact list: each field, several words, number forms, sorting, filters, keyset pages, last call,
and on PostgreSQL the query shape a million rows need (an index, never a scan of every contact)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls.models import CONTACT_SORTS, Call, CallQueue, Contact, ContactPhone, is_number_search, search_windows
from calls.queues.building import matching

pytestmark = pytest.mark.django_db


def make(name: str, company: str = "", email: str = "", *numbers: str, **extra) -> Contact:
    contact = Contact.objects.create(name=name, company=company, email=email, **extra)
    for i, number in enumerate(numbers):
        ContactPhone.objects.create(contact=contact, number=number, is_primary=i == 0, label="work")
    return contact


def names(qs) -> list[str]:
    return sorted(c.name for c in qs)


def make_people() -> dict[str, Contact]:
    return {
        "muhammad_bw": make("Muhammad Ali", "Brightwater Energy", "m.ali@brightwater.co.uk", "+447400123456"),
        "muhammad_cb": make("Muhammad Khan", "Cobalt Dental", "mk@cobalt.example", "+441614960000"),
        "grace_bw": make("Grace Hopper", "Brightwater Energy", "grace@example.com", "+447700900555", "+442079460123"),
        "mobile_with_020": make("Mobile Person", "", "", "+447402012345"),
    }


@pytest.fixture
def people() -> dict[str, Contact]:
    return make_people()


# --- Each field, several words ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("muhammad", ["Muhammad Ali", "Muhammad Khan"]),
        ("HOPPER", ["Grace Hopper"]),
        ("cobalt", ["Muhammad Khan"]),
        ("brightwater", ["Grace Hopper", "Muhammad Ali"]),
        ("grace@example", ["Grace Hopper"]),
        ("mk@cobalt.example", ["Muhammad Khan"]),
    ],
)
def test_it_finds_by_name_company_and_email(people, query, expected):
    assert names(Contact.objects.search(query)) == expected


def test_several_words_match_across_fields(people):
    assert names(Contact.objects.search("Muhammad Brightwater")) == ["Muhammad Ali"]
    assert names(Contact.objects.search("brightwater  grace")) == ["Grace Hopper"]
    assert names(Contact.objects.search("Muhammad Nowhere")) == []


def test_a_word_of_digits_in_a_mixed_query_matches_numbers(people):
    assert names(Contact.objects.search("Brightwater 0123")) == ["Grace Hopper"]


def test_a_word_of_digits_in_a_mixed_query_matches_the_text_too(people):
    make("Winston Smith", "Room 101 Ltd", "winston@room101.example")
    make("Bea Barista", "Cafe 2024")
    assert names(Contact.objects.search("room 101")) == ["Winston Smith"]
    assert names(Contact.objects.search("Room 101 Ltd")) == ["Winston Smith"]
    assert names(Contact.objects.search("101 room")) == ["Winston Smith"]
    assert names(Contact.objects.search("cafe 2024")) == ["Bea Barista"]
    # Every word must still match, each one somewhere.
    assert names(Contact.objects.search("room 2024")) == []
    assert names(Contact.objects.search("cafe 0123")) == []
    assert names(Contact.objects.search("hopper 101")) == []


def test_a_number_alone_still_matches_numbers_only(people):
    make("Studio Person", "Studio 020")
    # Neither the mobile with 020 inside (+447402012345) nor the company named Studio 020: only Grace's 020 number.
    assert names(Contact.objects.search("020")) == ["Grace Hopper"]
    assert names(Contact.objects.search("studio 020")) == ["Studio Person"]
    # With words, the digits match a number as before: at its start or its end, never inside.
    assert names(Contact.objects.search("mobile 020")) == []
    assert names(Contact.objects.search("mobile 12345")) == ["Mobile Person"]


# --- Number forms --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "+44 20 7946 0123",
        "+442079460123",
        "0044 20 7946 0123",
        "020 7946 0123",
        "(020) 7946-0123",
        "02079",
        "20 7946",
        "442079",
        "7946 0123",
        "0123",
        "946 0123",
    ],
)
def test_it_finds_a_number_from_its_start_in_any_form_or_by_its_ending(people, query):
    assert "Grace Hopper" in names(Contact.objects.search(query))


def test_a_national_prefix_does_not_match_a_number_that_has_it_in_the_middle(people):
    # +447402012345 contains "020" and "20": neither starts it (07402 012345) nor ends it.
    assert "Mobile Person" not in names(Contact.objects.search("020"))
    assert "Mobile Person" not in names(Contact.objects.search("+44 20"))
    assert names(Contact.objects.search("020")) == ["Grace Hopper"]


def test_the_middle_of_a_number_does_not_match(people):
    assert Contact.objects.search("9460").count() == 0


def test_a_contact_with_two_matching_numbers_is_listed_once(people):
    ContactPhone.objects.create(contact=people["grace_bw"], number="+442079460999", label="home")
    assert names(Contact.objects.search("020 7946")) == ["Grace Hopper"]


def test_an_extension_is_not_a_search_for_another_number(people):
    # Letters make the query a text search, which finds nobody; it never errors.
    assert names(Contact.objects.search("020 7946 0123 ext 22")) == []


def test_the_list_shows_the_number_that_matched(agent_client, people):
    response = agent_client.get("/contacts/", {"q": "7946 0123"})
    assert response.context["contacts"][0].shown_phone.number == "+442079460123"
    assert b"020 7946 0123" in response.content
    assert b"matched" in response.content
    plain = agent_client.get("/contacts/", {"q": "grace"})
    assert plain.context["contacts"][0].shown_phone.number == "+447700900555"  # the primary


# --- Sorting, filters, pages ---------------------------------------------------------------------------------


def _all_pages(qs, sort: str, size: int = 2) -> list[str]:
    seen, after = [], None
    while True:
        rows, after = qs.keyset_page(sort=sort, after=after, size=size)
        seen += [c.name for c in rows]
        if after is None:
            return seen


def test_each_sort_pages_through_every_contact_once_in_order(people, agent_user):
    now = timezone.now()
    Contact.objects.filter(pk=people["grace_bw"].pk).update(created_at=now - timedelta(days=3))
    for contact, minutes in ((people["muhammad_cb"], 5), (people["grace_bw"], 1)):
        call = Call.objects.create(
            to_number="+442079460123", contact=contact, requested_at=now - timedelta(minutes=minutes)
        )
        Contact.objects.note_call(call)
    qs = Contact.objects.all()
    assert _all_pages(qs, "name") == ["Grace Hopper", "Mobile Person", "Muhammad Ali", "Muhammad Khan"]
    assert _all_pages(qs, "company") == ["Mobile Person", "Grace Hopper", "Muhammad Ali", "Muhammad Khan"]
    last_called = _all_pages(qs, "last_called")
    assert last_called[:2] == ["Grace Hopper", "Muhammad Khan"]  # most recent first; never called after
    assert sorted(last_called[2:]) == ["Mobile Person", "Muhammad Ali"]
    assert len(set(last_called)) == 4
    created = _all_pages(qs, "created", size=1)
    assert created[-1] == "Grace Hopper" and len(created) == 4


def test_the_next_page_link_keeps_the_search_sort_and_filters(agent_client, agent_user):
    for i in range(30):
        make(f"Person {i:02d}", "Acme", "", owner=agent_user)
    first = agent_client.get("/contacts/", {"q": "person", "sort": "company", "mine": "1", "company": "Acme"})
    next_url = first.context["next_url"]
    for part in ("q=person", "sort=company", "mine=1", "company=Acme", "after="):
        assert part in next_url
    second = agent_client.get("/contacts/" + next_url, headers={"HX-Request": "true"})
    assert [c.name for c in second.context["contacts"]] == [f"Person {i}" for i in range(25, 30)]
    # htmx swaps the results and scrolls to the top of the new page
    assert b"show:window:top" in first.content


def test_filters_mine_do_not_call_and_company(agent_client, agent_user, people):
    Contact.objects.filter(pk=people["muhammad_cb"].pk).update(owner=agent_user)
    Contact.objects.filter(pk=people["grace_bw"].pk).update(do_not_call=True)
    ContactPhone.objects.filter(contact=people["mobile_with_020"]).update(do_not_call=True)

    def listed(**params) -> list[str]:
        return sorted(c.name for c in agent_client.get("/contacts/", params).context["contacts"])

    assert listed(mine="1") == ["Muhammad Khan"]
    assert listed(dnc="only") == ["Grace Hopper", "Mobile Person"]
    assert listed(dnc="hide") == ["Muhammad Ali", "Muhammad Khan"]
    assert listed(company="Brightwater Energy") == ["Grace Hopper", "Muhammad Ali"]
    assert listed(company="Brightwater Energy", q="muhammad") == ["Muhammad Ali"]


@pytest.mark.parametrize("after", ["garbage", "W10", "WyJhIl0", "WzEsMl0", "WyJ4IiwieSJd"])
def test_a_damaged_page_link_is_a_400_showing_the_first_page(agent_client, people, after):
    response = agent_client.get("/contacts/", {"after": after, "sort": "last_called"})
    assert response.status_code == 400
    assert "That page link is damaged" in response.content.decode()
    assert len(response.context["contacts"]) == 4


def test_an_unknown_sort_falls_back_to_name(agent_client, people):
    response = agent_client.get("/contacts/", {"sort": "password"})
    assert response.status_code == 200
    assert response.context["sort"] == "name"


# --- Last call -----------------------------------------------------------------------------------------------


def test_each_row_shows_when_the_contact_was_last_called_and_how_it_ended(agent_client, people):
    call = Call.objects.create(
        to_number="+442079460123", contact=people["grace_bw"], outcome=Call.Outcome.BUSY, state=Call.State.ENDED
    )
    assert Contact.objects.note_call(call) == 1
    response = agent_client.get("/contacts/", {"q": "grace"})
    assert "Line busy" in response.content.decode()
    assert b'data-outcome="busy"' in response.content
    assert b"never" in agent_client.get("/contacts/", {"q": "khan"}).content


def test_note_call_keeps_the_latest_call(people):
    contact = people["grace_bw"]
    now = timezone.now()
    later = Call.objects.create(to_number="+442079460123", contact=contact, requested_at=now)
    earlier = Call.objects.create(to_number="+442079460123", contact=contact, requested_at=now - timedelta(hours=1))
    assert Contact.objects.note_call(later) == 1
    assert Contact.objects.note_call(earlier) == 0  # a late word about an older call changes nothing
    contact.refresh_from_db()
    assert (contact.last_call, contact.last_called_at) == (later, now)
    assert Contact.objects.note_call(Call.objects.create(to_number="+442079460123")) == 0  # no contact


def test_refresh_last_calls_recomputes_every_contact(people):
    now = timezone.now()
    calls = [
        Call.objects.create(to_number="+1", contact=people["grace_bw"], requested_at=now - timedelta(minutes=m))
        for m in (5, 1, 9)
    ]
    Contact.objects.filter(pk=people["muhammad_bw"].pk).update(last_called_at=now)
    Contact.objects.refresh_last_calls()
    grace, ali = Contact.objects.get(pk=people["grace_bw"].pk), Contact.objects.get(pk=people["muhammad_bw"].pk)
    assert grace.last_call == calls[1]
    assert ali.last_call is None and ali.last_called_at is None


# --- The query shape at a million rows (PostgreSQL) ----------------------------------------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the indexes are PostgreSQL's")


@pytest.fixture(scope="class")
def crowd(django_db_setup, django_db_blocker):
    """The people and 10,000 more contacts with 13,000 numbers and fresh statistics, so the planner chooses as on a
    big table. Built once for the class that uses it, in a transaction rolled back after its last test; each test
    runs in a savepoint inside it, rolled back as usual (with what it changed, SET LOCAL and ANALYZE included)."""
    with django_db_blocker.unblock(), transaction.atomic():
        _fill_crowd()
        # The 23,000 rows' foreign keys checked now, once: left deferred, each test's end would check them all
        # again (pytest-django sets them IMMEDIATE in the test's savepoint, whose rollback queues them again), 46 ms.
        connection.check_constraints()
        yield
        transaction.set_rollback(True)


def _fill_crowd() -> None:
    make_people()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO calls_contact
                (name, company, email, notes, do_not_call, consent_override, created_at, updated_at)
            SELECT 'Person ' || md5(g::text), 'Company ' || (g % 500), 'p' || g || '@example.org', '', false, '',
                   now() - g * interval '1 minute', now()
            FROM generate_series(1, 10000) g
            """
        )
        cursor.execute(
            """
            INSERT INTO calls_contactphone (contact_id, label, number, is_primary, do_not_call)
            SELECT id, 'mobile', '+447' || lpad((id * 7919 % 1000000000)::text, 9, '0'), true, false
            FROM calls_contact WHERE name LIKE 'Person %'
            UNION ALL
            SELECT id, 'work', '+4413' || lpad((id * 104729 % 100000000)::text, 8, '0'), false, false
            FROM calls_contact WHERE name LIKE 'Person %' AND id % 10 < 3
            """
        )
        cursor.execute("ANALYZE calls_contact")
        cursor.execute("ANALYZE calls_contactphone")


def _explain(sql: str, params=None, **settings: str) -> list[str]:
    """The plan of sql, with planner settings (`enable_hashjoin="off"`) made for it alone."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Scanning 10,000 rows is still cheap, where scanning a million is not: rule the scan out.
        cursor.execute("SET LOCAL enable_seqscan = off")
        for name, value in settings.items():
            cursor.execute(f"SET LOCAL {name} = {value}")
        cursor.execute("EXPLAIN " + sql, params)
        return [row[0] for row in cursor.fetchall()]


def _plan(qs) -> str:
    return "\n".join(_explain(*qs.query.sql_with_params()))


def _whole_scans(plan: list[str], table: str) -> list[str]:
    """The plan's scans of table with no condition an index answers: each reads the whole table or index."""
    whole = []
    for i, line in enumerate(plan):
        if "Scan" in line and f" on {table}" in line and "Bitmap Index" not in line:
            depth = len(line) - len(line.lstrip())
            node = [line]
            for below in plan[i + 1 :]:
                if len(below) - len(below.lstrip()) <= depth or below.lstrip().startswith("->"):
                    break
                node.append(below)
            if not any("Index Cond" in part or "Recheck Cond" in part for part in node):
                whole.append(line.strip())
    return whole


def _page_as_run(query: str) -> list[tuple[dict[str, str], list[str]]]:
    """Each statement of the first page of this search, as the contact list runs it, with the planner settings in
    force when it ran (scoped by its transaction, a savepoint here) and its plan under them."""
    with CaptureQueriesContext(connection) as captured:
        Contact.objects.search(query).keyset_page(
            sort="name", after=None, size=25, windows=search_windows(query), number_only=is_number_search(query)
        )
    defaults = {"enable_bitmapscan": "on", "enable_hashjoin": "on"}
    in_force, ran = dict(defaults), []
    for sql in (q["sql"] for q in captured.captured_queries):
        if sql.startswith(("RELEASE SAVEPOINT", "ROLLBACK", "COMMIT")):
            in_force = dict(defaults)
        elif sql.startswith("SET LOCAL"):
            name, value = sql.removeprefix("SET LOCAL ").split(" = ")
            in_force[name] = value
        elif sql.startswith("SELECT"):
            ran.append(({**in_force, "sql": sql}, _explain(sql.replace("%", "%%"), **in_force)))
    return ran


def _page_query(qs, sort: str = "name", after=None):
    from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan

    order = CONTACT_SORTS[sort]
    if after:
        lookup = TupleLessThan if order[0].startswith("-") else TupleGreaterThan
        qs = qs.filter(lookup(Tuple(*(F(f.lstrip("-")) for f in order)), tuple(after)))
    return qs.order_by(*order)[:26]


@postgres_only
class TestOnABigTable:
    """Each query reads an index: the plans of the crowd's 10,000 contacts, built once for these tests."""

    @pytest.mark.parametrize("query", ["brightwater", "Muhammad Brightwater", "grace@example"])
    def test_words_are_searched_through_the_trigram_index(self, crowd, query):
        plan = _plan(_page_query(Contact.objects.search(query)))
        assert "contact_search_trgm_idx" in plan
        assert "Seq Scan" not in plan

    @pytest.mark.parametrize("query", ["020 7946", "+44 20 7946 0123", "7946 0123"])
    def test_a_number_is_searched_through_its_prefix_and_ending_indexes(self, crowd, query):
        plan = _plan(_page_query(Contact.objects.search(query)))
        assert "contactphone_number_prefix_idx" in plan or "contactphone_number_reverse_idx" in plan
        assert "Seq Scan" not in plan
        if query == "020 7946":
            assert "contactphone_number_prefix_idx" in plan and "contactphone_number_reverse_idx" in plan

    @pytest.mark.parametrize("query", ["020 7946", "+44 20 7946 0123", "7946 0123", "brightwater", "Brightwater 0123"])
    def test_every_statement_of_a_page_finds_numbers_through_an_index_under_the_views_planner_settings(
        self, crowd, query
    ):
        """The page's windows run with bitmap scans off (for the trigram index's sake) except for a number alone,
        whose start and ending indexes only a bitmap scan can OR: without one, every number is read."""
        ran = _page_as_run(query)
        assert ran
        for _, plan in ran:
            assert _whole_scans(plan, "calls_contactphone") == [], "\n".join(plan)
        bitmaps_off = [settings for settings, _ in ran if settings["enable_bitmapscan"] == "off"]
        assert bool(bitmaps_off) is not is_number_search(query)

    def test_the_last_step_of_a_number_search_looks_its_few_matches_up_rather_than_hashing_every_contact(self, crowd):
        """One match: 3,000 contacts do not hold a page of them, so every match is fetched and sorted."""
        ran = _page_as_run("+44 20 7946 0123")
        settings_in_force, plan = ran[-1]
        assert "ORDER BY (" in settings_in_force["sql"]  # the step that sorts every match
        assert settings_in_force["enable_hashjoin"] == "off"
        assert not any(re.search(r"Hash (\w+ )?Join", line) for line in plan), "\n".join(plan)

    def test_the_last_step_of_a_mixed_search_looks_each_way_up_through_its_own_index(self, crowd):
        """person 0123: 10,000 people, and 0123 at the end of a few numbers. Reading every person to check their
        numbers is what the last step avoids: the digits are looked for in the trigram index with the words, then
        in the numbers' indexes, and the few contacts found are looked up by primary key."""
        last_step = [plan for settings, plan in _page_as_run("person 0123") if "ORDER BY (" in settings["sql"]]
        assert len(last_step) == 3, last_step  # in the text, as a number, the candidates sorted
        text, number, candidates = ("\n".join(plan) for plan in last_step)
        trigram = re.findall(
            r"on contact_search_trgm_idx.*\n\s*Index Cond: (.*)", "\n".join([text, number, candidates])
        )
        assert trigram, text
        assert all("0123" in condition for condition in trigram), trigram  # never "person" alone
        assert "contactphone_number_reverse_idx" in number
        assert "calls_contact_pkey" in candidates

    @pytest.mark.parametrize(
        ("sort", "index"),
        [("name", "contact_name_id_idx"), ("company", "contact_company_idx"), ("created", "contact_created_idx")],
    )
    def test_each_sort_reads_its_index_in_order_without_sorting_every_row(self, crowd, sort, index):
        plan = _plan(_page_query(Contact.objects.all(), sort))
        assert index in plan
        assert "Sort" not in plan
        assert "Seq Scan" not in plan

    @pytest.mark.parametrize(
        ("sort", "after"), [("name", ["Person 8", 0]), ("created", [timezone.now() - timedelta(days=7), 10**9])]
    )
    def test_a_deep_page_starts_inside_the_index(self, crowd, sort, after):
        plan = _plan(_page_query(Contact.objects.all(), sort, after))
        assert "Index Cond: (ROW(" in plan
        assert "Sort" not in plan

    def test_last_called_pages_through_its_index(self, crowd):
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE calls_contact SET last_called_at = %s - id * interval '1 second' WHERE id %% 4 = 0", [now]
            )
            cursor.execute("ANALYZE calls_contact")
        qs = Contact.objects.filter(last_called_at__isnull=False)
        assert "contact_last_called_idx" in _plan(_page_query(qs, "last_called"))
        assert "contact_last_called_idx" in _plan(_page_query(qs, "last_called", [now.isoformat(), 10**9]))


def test_a_search_at_any_depth_costs_the_same_number_of_queries(agent_client, people, django_assert_max_num_queries):
    # session, user, permissions (2), their numbers, numbers blocked anywhere, agent; and the contacts: for each of
    # called and never called, a savepoint, the planner setting, the window's end, the window, the release (and, the
    # page not being there, the matches sorted): a constant, whatever the depth.
    with django_assert_max_num_queries(19):
        agent_client.get("/contacts/", {"q": "brightwater", "sort": "last_called"})


@pytest.mark.parametrize("sort", ["name", "company", "last_called", "created"])
def test_a_narrowed_page_is_the_same_whichever_plan_finds_it(monkeypatch, sort):
    """Small windows force every path: the page found in the first window, in the second, and by sorting."""
    monkeypatch.setattr("calls.models.contacts.SEARCH_WINDOWS", (2, 4))  # the defaults are larger than this test's data
    now = timezone.now()
    for i in range(30):
        # Matches cluster at the end of the name order, and are spread through the other orders.
        name = f"Zed Match {i:02d}" if i % 3 == 0 else f"Ann Other {i:02d}"
        contact = make(name, f"Company {(i * 7) % 10}")
        Contact.objects.filter(pk=contact.pk).update(created_at=now - timedelta(minutes=i))
        if i % 2:
            call = Call.objects.create(to_number="+1", contact=contact, requested_at=now - timedelta(seconds=i))
            Contact.objects.note_call(call)
    narrowed = Contact.objects.search("match")
    expected = list(narrowed.order_by(*CONTACT_SORTS[sort]))
    if sort == "last_called":
        expected = [c for c in expected if c.last_called_at] + sorted(
            (c for c in expected if not c.last_called_at), key=lambda c: -c.pk
        )
    assert _all_pages(narrowed, sort, size=3) == [c.name for c in expected]


BY_TEXT, BY_NUMBER, BY_BOTH, BY_NEITHER = (
    ("Unit 101", "+442079460999"),
    ("Unit 7", "+441614960101"),
    ("Unit 101", "+441614960101"),
    ("Unit 7", "+442079460999"),
)


@pytest.mark.parametrize(
    ("query", "ways"), [("match 101", {BY_TEXT, BY_NUMBER, BY_BOTH}), ("match 101 161", {BY_NUMBER, BY_BOTH})]
)
@pytest.mark.parametrize("sort", ["name", "company", "last_called", "created"])
def test_a_mixed_search_pages_the_same_whichever_way_each_contact_matches(monkeypatch, sort, query, ways):
    """A contact matches 101 by its text, by a number, or both (and 161, the start of a number, only by a number):
    the last step looks each way up on its own, and the pages hold every match once, in order."""
    monkeypatch.setattr("calls.models.contacts.SEARCH_WINDOWS", (2, 4))  # every path: first window, second, last step
    now = timezone.now()
    for i in range(32):
        unit, number = (BY_TEXT, BY_NUMBER, BY_BOTH, BY_NEITHER)[i % 4]
        name = f"Match {i:02d}" if i % 5 else f"Other {i:02d}"
        contact = make(name, f"{unit} Co {(i * 7) % 10}", "", number)
        Contact.objects.filter(pk=contact.pk).update(created_at=now - timedelta(minutes=i))
        if i % 2:
            call = Call.objects.create(to_number="+1", contact=contact, requested_at=now - timedelta(seconds=i))
            Contact.objects.note_call(call)
    narrowed = Contact.objects.search(query).prefetch_related("phones")
    expected = list(narrowed.order_by(*CONTACT_SORTS[sort]))
    assert {(c.company.split(" Co")[0], c.phones.all()[0].number) for c in expected} == ways
    if sort == "last_called":
        expected = [c for c in expected if c.last_called_at] + sorted(
            (c for c in expected if not c.last_called_at), key=lambda c: -c.pk
        )
    assert _all_pages(narrowed, sort, size=3) == [c.name for c in expected]


def test_a_word_no_index_can_find_is_looked_for_further_in_the_order():
    from calls.models import SEARCH_WINDOWS, SHORT_WORD_WINDOWS, search_windows

    assert search_windows("mu") == SHORT_WORD_WINDOWS
    assert search_windows("grace mu") == SHORT_WORD_WINDOWS
    assert search_windows("muhammad") == SEARCH_WINDOWS
    assert search_windows("020") == SEARCH_WINDOWS


@pytest.mark.parametrize("query", ["0040899", "00 40 899", "0044 7400 040899"])
def test_digits_that_begin_with_00_are_tried_as_the_end_of_a_number_too(query):
    make("Zero Zero", "", "", "+447400040899")
    make("Elsewhere", "", "", "+40899123456")  # +40 899…: what 0040899 as an international prefix would mean
    found = names(Contact.objects.search(query))
    assert "Zero Zero" in found


def test_an_international_prefix_typed_with_00_still_finds_its_number(people):
    assert names(Contact.objects.search("0044 7400 123")) == ["Muhammad Ali"]


def test_the_htmx_answer_to_a_search_is_the_lists_fragment_only(agent_client, people):
    page = agent_client.get("/contacts/", {"q": "brightwater"})
    fragment = agent_client.get("/contacts/", {"q": "brightwater"}, headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert text.lstrip().startswith('<div id="results"') and text.rstrip().endswith("</div>")
    assert 'role="search"' not in text and '<nav aria-label="Main' not in text and "<html" not in text
    assert "Grace Hopper" in text and "Muhammad Ali" in text
    assert len(fragment.content) < len(page.content) - 2000


def test_a_row_of_the_list_is_light_what_every_row_shares_is_in_the_page_once(agent_client, agent_user, london):
    from tests._calls import make_call

    for n in range(26):
        contact = make(f"Person Number {n:02d}", "Brightwater Energy", f"person.{n}@brightwater.example.co.uk",
                       f"+4474001234{n:02d}")  # fmt: skip
        make_call(user=agent_user, agent=agent_user.agent, contact=contact, to_number=contact.phones.get().number)
    Contact.objects.all().refresh_last_calls()
    page = agent_client.get("/contacts/", {"q": "brightwater"}).content.decode()
    fragment = agent_client.get("/contacts/", {"q": "brightwater"}, headers={"HX-Request": "true"}).content.decode()

    rows = re.findall(r"<tr>.*?</tr>", fragment, re.S)[1:]
    assert len(rows) == 25 and all("data-call-button" in row for row in rows)
    # 1,689 bytes a row when each Call button was a form of its own, with a CSRF token and a click id; 1,336 with
    # one shared form; 1,366 with the no-JavaScript id in each button's address.
    assert len(fragment.encode()) / len(rows) < 1400
    assert "csrfmiddlewaretoken" not in fragment and 'name="request_id"' not in fragment
    assert page.count('id="list-call-form"') == 1 and page.count("?request_id=") == len(rows)


TRUNK_IN_BRACKETS = ["+44 (0)20 7946 0123", "+44(0)2079460123", "0044 (0) 20 7946 0123", "+44 (0) 20 7946"]


@pytest.mark.parametrize("typed", TRUNK_IN_BRACKETS)
def test_a_number_typed_with_its_trunk_zero_in_brackets_is_found(agent_client, contact, typed):
    # As letterheads and e-mail signatures write it; the contact form reads it, the search found nothing.
    response = agent_client.get("/contacts/", {"q": typed})
    assert [c.name for c in response.context["contacts"]] == ["Grace Hopper"]
    assert response.context["contacts"][0].shown_phone.number == "+442079460123"  # the number it found, shown
    assert f'value="{typed}"' in response.content.decode()  # the box keeps what was typed


@pytest.mark.parametrize("typed", TRUNK_IN_BRACKETS)
def test_every_search_of_contacts_reads_the_bracketed_trunk_zero(people, typed):
    # The rule was the list form's alone: Contact.objects.search (the admin's, a queue's) found nobody.
    found = list(Contact.objects.search(typed).prefetch_related("phones"))
    assert [c.name for c in found] == ["Grace Hopper"]
    assert found[0].phone_matching(typed).number == "+442079460123"


@pytest.mark.parametrize(
    "typed", ["Hopper, Grace", "hopper;grace", "Hopper,Grace", "Brightwater; Hopper, 0123", "+44 20 7946, 0123"]
)
def test_commas_and_semicolons_between_words_are_spaces_for_every_search(agent_client, agent_user, people, typed):
    # "Last, First" pasted: "hopper," matched nobody. The search reads it, so a queue built from a raw q does too.
    assert names(Contact.objects.search(typed)) == ["Grace Hopper"]
    assert is_number_search(typed) == typed.startswith("+")
    response = agent_client.get("/contacts/", {"q": typed})
    assert [c.name for c in response.context["contacts"]] == ["Grace Hopper"]
    if "0123" in typed:  # a contact found by a number shows that number
        assert response.context["contacts"][0].shown_phone.number == "+442079460123"
    queue = CallQueue(name="Pasted", created_by=agent_user, source_filter={"q": typed})
    assert names(matching(queue)) == ["Grace Hopper"]

"""The admin's call and contact lists cost the same SQL at 5 rows as at 60 (and so at millions): nothing counts the
whole table, the count says when it is an estimate or a lower bound, and searches and filters go through indexes."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calls import auth
from calls.admin import paging
from calls.admin.calls import CallAdmin
from calls.admin.contacts import ContactAdmin, ContactPhoneAdmin
from calls.admin.paging import EstimatingPaginator, RowCount, capped_count, table_estimate
from calls.models import Call, Contact, ContactPhone, DispositionCode
from tests._calls import make_call

pytestmark = pytest.mark.django_db

CALLS = "/admin/calls/call/"
CONTACTS = "/admin/calls/contact/"
PHONES = "/admin/calls/contactphone/"

CALL_CASES = [
    "",
    "?state__exact=ended",
    "?outcome__exact=busy",
    "?disposition_code=Sale",
    "?requested_at__gte=2020-01-01+00:00:00%2B00:00&requested_at__lt=2099-01-01+00:00:00%2B00:00",
    "?q=%2B447400",
    "?q=020+7946+0123",
    "?q=vcc-3",
    "?p=2",
]
SINCE_2020 = "__gte=2020-01-01+00:00:00%2B00:00"
CONTACT_CASES = ["", "?do_not_call__exact=1", f"?created_at{SINCE_2020}", "?q=hopper", "?q=07400+123", "?p=2"]
PHONE_CASES = ["", "?is_primary__exact=0", "?do_not_call__exact=1", "?q=%2B4474", "?q=0123", "?p=2"]


@pytest.fixture
def root_client(db) -> Client:
    from django.contrib.auth import get_user_model

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(root)
    return client


@pytest.fixture
def small_pages(monkeypatch):
    """Two rows a page, so that 5 rows have a page 2."""
    for model_admin in (CallAdmin, ContactAdmin, ContactPhoneAdmin):
        monkeypatch.setattr(model_admin, "list_per_page", 2)


def _add_calls(user, start: int, stop: int) -> None:
    for i in range(start, stop):
        make_call(
            user=user,
            outcome="busy" if i % 3 else "answered",
            vcc_call_id=f"vcc-{i}",
            disposition_code="Sale" if i % 2 else "",
            at=timezone.now() - timedelta(minutes=i),
        )


def _add_contacts(start: int, stop: int) -> None:
    for i in range(start, stop):
        contact = Contact.objects.create(name=f"Grace Hopper {i}", company="Cobalt", do_not_call=i % 7 == 0)
        ContactPhone.objects.create(contact=contact, number=f"+4474001{i:05d}", is_primary=True)
        ContactPhone.objects.create(contact=contact, number=f"+4420794{i:05d}", label="work")


def _queries(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return [q["sql"] for q in captured.captured_queries]


def _assert_no_unbounded_count(sqls: list[str]) -> None:
    """Every COUNT reads a bounded subquery (LIMIT), and no query lists the distinct dates of the rows."""
    for sql in sqls:
        if "COUNT(" in sql.upper():
            assert re.search(r"LIMIT \d+", sql), sql
        assert "DISTINCT" not in sql.upper() or "datetime" not in sql.lower(), sql


@pytest.mark.parametrize(
    ("url", "cases", "grow"),
    [(CALLS, CALL_CASES, "calls"), (CONTACTS, CONTACT_CASES, "contacts"), (PHONES, PHONE_CASES, "contacts")],
)
def test_the_lists_run_as_many_queries_at_60_rows_as_at_5_and_never_count_a_whole_table(
    root_client, small_pages, admin_role_user, url, cases, grow, monkeypatch
):
    # The signed-in user and their permissions stay cached for the test (5 s by default in tests: a slow run would
    # read them again in one request and not another).
    monkeypatch.setattr(auth, "_seconds", lambda: 3600)
    DispositionCode.objects.get_or_create(code="Sale")
    add = (lambda a, b: _add_calls(admin_role_user, a, b)) if grow == "calls" else _add_contacts
    add(0, 5)
    root_client.get(url)  # reads the user and their permissions into the cache
    few = {case: _queries(root_client, url + case) for case in cases}
    add(5, 60)
    many = {case: _queries(root_client, url + case) for case in cases}
    for case in cases:
        assert len(many[case]) == len(few[case]), (case, few[case], many[case])
        _assert_no_unbounded_count(many[case])


def test_the_call_search_finds_a_number_by_its_start_in_any_format_and_a_call_by_its_vcc_id(
    root_client, admin_role_user
):
    make_call(user=admin_role_user, to_number="+442079460123", vcc_call_id="abc-1")
    make_call(user=admin_role_user, to_number="+447400999888", vcc_call_id="abc-2")
    assert b"abc-1" not in root_client.get(CALLS + "?q=07400+999").content
    by_number = root_client.get(CALLS + "?q=020+7946").context["cl"]
    assert [c.vcc_call_id for c in by_number.result_list] == ["abc-1"]
    by_id = root_client.get(CALLS + "?q=abc-2").context["cl"]
    assert [c.vcc_call_id for c in by_id.result_list] == ["abc-2"]
    assert list(root_client.get(CALLS + "?q=abc").context["cl"].result_list) == []  # an id is matched whole


def test_the_contact_search_is_the_contacts_page_search(root_client):
    _add_contacts(0, 3)
    found = root_client.get(CONTACTS + "?q=hopper+1").context["cl"].result_list
    assert [c.name for c in found] == ["Grace Hopper 1"]
    by_number = root_client.get(CONTACTS + "?q=020+7940+0002").context["cl"].result_list
    assert [c.name for c in by_number] == ["Grace Hopper 2"]
    phones = root_client.get(PHONES + "?q=100002").context["cl"].result_list  # a number's ending
    assert [p.number for p in phones] == ["+447400100002"]
    phones = root_client.get(PHONES + "?q=%2B442079").context["cl"].result_list  # its start
    assert sorted(p.number for p in phones) == ["+442079400000", "+442079400001", "+442079400002"]
    assert list(root_client.get(PHONES + "?q=hopper").context["cl"].result_list) == []  # names: the contacts list


@pytest.mark.parametrize("typed", ["Hopper, Grace 1", "hopper;grace;1", "1, Hopper"])
def test_the_contact_search_reads_commas_and_semicolons_as_spaces(root_client, typed):
    _add_contacts(0, 3)
    found = root_client.get(CONTACTS, {"q": typed}).context["cl"].result_list
    assert [c.name for c in found] == ["Grace Hopper 1"]


def test_an_unfiltered_big_list_shows_the_tables_estimate_as_an_estimate_and_pages_to_the_cap(
    root_client, admin_role_user, monkeypatch
):
    monkeypatch.setattr(paging, "table_estimate", lambda model, using: 5_000_000)
    _add_calls(admin_role_user, 0, 3)
    response = root_client.get(CALLS)
    page = response.content.decode()
    assert "about 5,000,000 calls (an estimate)" in page
    assert "The pages reach the first 10,000 rows: filter or search to find the others." in page
    assert 'href="?p=200"' in page and 'href="?p=201"' not in page  # 50 a page up to the 10,000th row
    assert root_client.get(CALLS + "?p=200").status_code == 200  # beyond the rows there are: an empty page


def test_a_filtered_list_is_counted_up_to_the_cap_and_says_so_beyond_it(root_client, admin_role_user, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_CAP", 10)
    _add_calls(admin_role_user, 0, 30)
    assert "10+ calls" in root_client.get(CALLS + "?outcome__exact=busy").content.decode()
    assert "10 calls" in root_client.get(CALLS + "?outcome__exact=answered").content.decode()
    assert "1 call\n" in root_client.get(CALLS + "?q=vcc-3").content.decode()


def test_a_count_prints_as_what_it_is_and_compares_as_a_number():
    about, at_least, exact = RowCount(5_000_000, RowCount.ABOUT), RowCount(10_000, RowCount.AT_LEAST), RowCount(42)
    assert (str(about), str(at_least), str(exact)) == ("about 5,000,000", "10,000+", "42")
    assert about > 100 and at_least == 10_000 and exact.exact and not about.exact


def test_a_capped_count_reads_at_most_one_row_past_the_cap(admin_role_user):
    _add_calls(admin_role_user, 0, 12)
    assert (capped_count(Call.objects.all(), 10), capped_count(Call.objects.all(), 10).kind) == (10, "at least")
    assert (capped_count(Call.objects.all(), 12), capped_count(Call.objects.all(), 12).kind) == (12, "exact")


def test_the_estimate_is_postgresqls_row_estimate_and_none_elsewhere(admin_role_user):
    _add_calls(admin_role_user, 0, 20)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {Call._meta.db_table}")
        assert table_estimate(Call, "default") == 20
    else:
        assert table_estimate(Call, "default") is None


def test_a_small_table_is_counted_exactly_even_unfiltered(admin_role_user, monkeypatch):
    monkeypatch.setattr(paging, "table_estimate", lambda model, using: 50)  # under the cap: count it
    _add_calls(admin_role_user, 0, 3)
    count = EstimatingPaginator(Call.objects.all(), 100).count
    assert (count, count.kind) == (3, "exact")


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("0", '"calls_call"."requested_at" ASC, "calls_call"."id" ASC'),
        ("-0", '"calls_call"."requested_at" DESC, "calls_call"."id" DESC'),
        ("1", '"calls_call"."requested_at" DESC, "calls_call"."id" DESC'),  # state: not sortable, so ignored
        ("1.0", '"calls_call"."requested_at" ASC, "calls_call"."id" ASC'),
    ],
)
def test_the_call_list_sorts_by_time_only_with_ties_broken_the_way_time_runs(
    root_client, admin_role_user, order, expected
):
    """Oldest first reads the (requested_at DESC, id DESC) index backwards (Django's own tiebreak, `-pk`, would sort
    every call), and an address naming a column no index serves (?o=1, the state) does not sort by it."""
    assert CallAdmin.list_display[0] == "requested_at" and CallAdmin.sortable_by == ["requested_at"]
    _add_calls(admin_role_user, 0, 3)
    sqls = _queries(root_client, f"{CALLS}?o={order}")
    listing = [sql for sql in sqls if 'FROM "calls_call"' in sql and "ORDER BY" in sql]
    assert listing and all(sql.split("ORDER BY")[1].strip().startswith(expected) for sql in listing), listing

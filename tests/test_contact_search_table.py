"""The narrow search table (calls/models/contactsearch.py): PostgreSQL keeps it as contacts are written, and the
search sorts a word's matches by name from it when the first names of the list do not hold the page, with the same
pages as before."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Contact, ContactSearch
from calls.models import contacts as contact_models
from tests.test_contact_search import _all_pages, make

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's triggers keep the table"),
]


def mirrored() -> dict[int, tuple[str, str]]:
    return {row.id: (row.name, row.search_text) for row in ContactSearch.objects.all()}


def expected() -> dict[int, tuple[str, str]]:
    return {c.pk: (c.name, c.search_text) for c in Contact.objects.all()}


def test_every_write_of_a_contact_is_mirrored_in_its_transaction():
    ada = make("Ada Lovelace", "Analytical", "ada@example.com")
    Contact.objects.bulk_create([Contact(name="Bulk One"), Contact(name="Bulk Two", company="Acme")])
    assert mirrored() == expected() and len(mirrored()) == 3

    ada.name, ada.company, ada.email = "Ada King", "Engines Ltd", "ada@engines.example"
    ada.save()
    Contact.objects.filter(name="Bulk One").update(company="Renamed Co")
    Contact.objects.filter(name="Bulk Two").update(notes="not searched: no write")
    assert mirrored() == expected()
    assert mirrored()[ada.pk] == ("Ada King", "ada king engines ltd ada@engines.example")

    ada.delete()
    Contact.objects.filter(name="Bulk One").delete()
    assert mirrored() == expected() and len(mirrored()) == 1

    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's transaction has foreign key checks pending
        cursor.execute("TRUNCATE calls_contact CASCADE")
    assert mirrored() == {}


def test_manage_py_flush_empties_contacts_and_their_search_table_together(request):
    """flush names both tables in one TRUNCATE; the trigger must not truncate the search table a second time."""
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command

    # flush's post_migrate numbers the content types afresh and caches them; the test's rollback restores the rows.
    request.addfinalizer(ContentType.objects.clear_cache)

    make("Ada Lovelace", "Analytical", "ada@example.com")
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("flush", interactive=False, verbosity=0)  # TRUNCATE … RESTART IDENTITY of every table
    assert not Contact.objects.exists() and mirrored() == {}
    make("Grace Hopper", "Cobalt", "grace@example.com")
    assert mirrored() == expected() and len(mirrored()) == 1


def people(count: int = 40) -> None:
    for i in range(count):
        # The matches ("grace") all sort after every other name, as a common first name far down the list does.
        name = f"Grace {i:02d} Match" if i % 2 else f"Ann Other {i:02d}"
        make(name, "Brightwater" if i % 3 else "Cobalt", f"p{i}@example.com")


@pytest.mark.parametrize("query", ["grace", "grace match", "brightwater grace", "match 1"])
def test_a_page_sorted_from_the_narrow_table_is_the_page_sorted_from_the_contacts(monkeypatch, query):
    monkeypatch.setattr(contact_models, "SEARCH_WINDOWS", (2, 4))  # the matches lie beyond both windows
    people()
    narrowed = Contact.objects.search(query)
    by_table = _all_pages(narrowed, "name", size=3)
    monkeypatch.setattr(contact_models, "_words_alone", lambda qs: None)
    assert _all_pages(narrowed, "name", size=3) == by_table
    assert by_table == [c.name for c in narrowed.order_by("name", "pk")] != []


def queries_of_first_page(qs) -> str:
    with CaptureQueriesContext(connection) as captured:
        qs.keyset_page(sort="name", after=None, size=3, windows=(2, 4))
    return "\n".join(q["sql"] for q in captured.captured_queries)


def test_only_words_sorted_by_name_are_read_from_it():
    people()
    assert "calls_contactsearch" in queries_of_first_page(Contact.objects.search("grace"))
    # A filter is met only by the contacts' own rows; a word of digits may be a number; another order, its own index.
    assert "calls_contactsearch" not in queries_of_first_page(Contact.objects.search("grace").filter(company="Cobalt"))
    assert "calls_contactsearch" not in queries_of_first_page(Contact.objects.search("grace 101"))
    with CaptureQueriesContext(connection) as captured:
        Contact.objects.search("grace").keyset_page(sort="company", after=None, size=3, windows=(2, 4))
    assert "calls_contactsearch" not in "\n".join(q["sql"] for q in captured.captured_queries)

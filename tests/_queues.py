"""What the call queue tests share: a weekday morning's clock, contacts, five Acme leads and a queue of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calls.models import CallQueue, Contact, ContactPhone
from calls.queues import building

NOW = datetime(2026, 12, 8, 11, 0, tzinfo=UTC)  # a Tuesday, 11:00 in London


def _contact(name: str, number: str, *, created: datetime | None = None, **fields) -> Contact:
    contact = Contact.objects.create(name=name, **fields)
    ContactPhone.objects.create(contact=contact, number=number, is_primary=True)
    if created is not None:
        Contact.objects.filter(pk=contact.pk).update(created_at=created)
    return contact


@pytest.fixture
def leads(db):
    """Five leads at Acme, made a day apart (Ada oldest), and one elsewhere."""
    names = ["Ada", "Ben", "Cleo", "Dev", "Eve"]
    made = [
        _contact(n, f"+4474001234{i:02d}", created=NOW - timedelta(days=10 - i), company="Acme")
        for i, n in enumerate(names)
    ]
    _contact("Zed", "+447400999000", company="Other")
    return made


@pytest.fixture
def queue(leads, supervisor_user, agent_user, other_agent_user, sales):
    made = building.make_queue(
        user=supervisor_user, name="Acme leads", now=NOW, source_filter={"company": "Acme"}, groups=[sales]
    )
    return made.queue


def _names(queue: CallQueue) -> list[str]:
    return list(queue.entries.order_by("position").values_list("contact__name", flat=True))

"""A call's request id and VCC's call id, each unique in a table of its own that the call table's trigger keeps
(calls/models/callkeys.py): every way a call is written gives it its keys, each key stays unique for good and finds
its call however old, and no index on the call table holds either (a retention pass rewrites every old row)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from calls.models import Call, CallRequestId, CallVccId, Contact, ContactPhone, RetentionPolicy
from calls.privacy.retention import apply_retention
from tests._calls import make_call

pytestmark = pytest.mark.django_db

GUID = "a3c1f0de-52b1-4a53-9f4e-0c7d1e0b5a11"


def keys() -> tuple[dict[str, int], dict[str, int]]:
    """(request id → call, VCC call id → call) as the key tables hold them."""
    requests = {str(k.request_id): k.call_id for k in CallRequestId.objects.all()}
    return requests, {k.vcc_call_id: k.call_id for k in CallVccId.objects.all()}


def test_every_way_a_call_is_written_gives_it_its_keys(agent_user):
    made = make_call(user=agent_user, agent=agent_user.agent)  # the ORM's save
    bulk = Call.objects.bulk_create(
        [Call(created_by=agent_user, to_number="+447400123457", vcc_call_id=GUID, requested_at=timezone.now())]
    )[0]
    clicked = Call(created_by=agent_user, to_number="+447400123458", requested_at=timezone.now())
    clicked.insert()  # the click's hand-written INSERT
    requests, vcc = keys()
    assert requests == {str(c.request_id): c.pk for c in (made, bulk, clicked)}
    assert vcc == {GUID: bulk.pk}

    # VCC's answer names the click's call; a later answer may name another id; a call may lose it.
    clicked.vcc_call_id = "guid-1"
    clicked.save_fields(["vcc_call_id"])
    assert keys()[1] == {GUID: bulk.pk, "guid-1": clicked.pk}
    Call.objects.filter(pk=clicked.pk).update(vcc_call_id="guid-2")
    assert keys()[1] == {GUID: bulk.pk, "guid-2": clicked.pk}
    Call.objects.filter(pk=bulk.pk).update(vcc_call_id="")
    assert keys()[1] == {"guid-2": clicked.pk}
    # Writing other columns, or the same id again, leaves the keys alone.
    Call.objects.filter(pk=clicked.pk).update(notes="Spoke to Ada", vcc_call_id="guid-2")
    made.save()
    assert keys() == ({str(c.request_id): c.pk for c in (made, bulk, clicked)}, {"guid-2": clicked.pk})

    clicked.delete()
    assert keys() == ({str(c.request_id): c.pk for c in (made, bulk)}, {})


def test_each_key_stays_unique(agent_user):
    first = make_call(user=agent_user, vcc_call_id=GUID)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_call(user=agent_user, request_id=first.request_id)  # a click saved twice
    with pytest.raises(IntegrityError), transaction.atomic():
        make_call(user=agent_user, vcc_call_id=GUID)
    other = make_call(user=agent_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.filter(pk=other.pk).update(vcc_call_id=GUID)
    assert Call.objects.count() == 2 and keys()[1] == {GUID: first.pk}


def test_a_call_is_found_by_either_key_after_its_number_is_masked(agent_user):
    now = timezone.now()
    phone = ContactPhone.objects.create(contact=Contact.objects.create(name="Ada Lovelace"), number="+442079460100")
    old = make_call(
        user=agent_user,
        at=now - timedelta(days=40),
        vcc_call_id=GUID,
        to_number=phone.number,
        phone=phone,
        contact=phone.contact,
    )
    recent = make_call(
        user=agent_user, at=now - timedelta(days=2), to_number=phone.number, phone=phone, contact=phone.contact
    )
    policy = RetentionPolicy.current()
    policy.mask_days = 30
    policy.save()
    before = keys()

    run = apply_retention(now=now)

    assert run.numbers_masked == 1 and keys() == before  # the pass never writes a key
    masked = Call.objects.with_vcc_call_id(GUID).get()
    assert masked.pk == old.pk and "•" in masked.to_number
    # The masked call no longer leads to the contact's number, which holds it whole; the recent one still does.
    assert masked.phone_id is None and masked.contact_id == phone.contact_id
    assert Call.objects.get(pk=recent.pk).phone_id == phone.pk
    assert Call.objects.with_request_id(old.request_id).get().pk == old.pk
    assert Call.objects.with_request_id(str(recent.request_id)).get().pk == recent.pk
    assert not Call.objects.with_request_id(uuid.uuid4()).exists()
    assert not Call.objects.with_vcc_call_id("no-such-call").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans and index definitions")
def test_no_index_of_the_call_table_holds_either_key_and_the_lookups_go_through_their_tables(agent_user):
    def indexes_of(model) -> dict[str, str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [model._meta.db_table])
            return dict(cursor.fetchall())

    indexes = indexes_of(Call)
    assert not [name for name, sql in indexes.items() if "request_id" in sql or "vcc_call_id" in sql], indexes
    # The phone's index leaves out masked calls, whose phone is gone; the colleague's and the answerer's, the calls
    # without one (most): a row written again without one takes no entry in them.
    for name, column in (
        ("call_phone_idx", "phone_id"),
        ("call_to_agent_idx", "to_agent_id"),
        ("call_answered_by_idx", "answered_by_id"),
    ):
        assert f"WHERE ({column} IS NOT NULL)" in indexes[name]
    # VCC's call id has its primary key alone: no second index for LIKE, which nothing asks of it.
    assert sorted(indexes_of(CallVccId)) == ["calls_callvccid_call_id_key", "calls_callvccid_pkey"]

    make_call(user=agent_user, vcc_call_id=GUID)
    agent = agent_user.agent
    for queryset, index in (
        (Call.objects.with_vcc_call_id(GUID), "callvccid_pkey"),
        (Call.objects.with_request_id(uuid.uuid4()), "callrequestid_pkey"),
        (Call.objects.select_for_update().with_vcc_call_id(GUID), "callvccid_pkey"),
        # What deleting an agent or a number asks (PROTECT, SET NULL), and an agent's calls: the partial indexes serve.
        (Call.objects.filter(to_agent__in=[agent]), "call_to_agent_idx"),
        (Call.objects.filter(answered_by=agent), "call_answered_by_idx"),
        (Call.objects.filter(phone_id__in=[1, 2]), "call_phone_idx"),
    ):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # a table this small is otherwise read whole anyway
            sql, params = queryset.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Seq Scan" not in plan and index in plan, plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_the_keys_of_the_calls_there_and_keeps_them_unique(agent_user):
    """Back to before the key tables (0036), a call written then; forward again: its keys are in their tables, and a
    second call with the same keys is refused."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    executor.migrate([("calls", "0036_contact_search_survives_flush")])
    # The call table's columns are the same on both sides of 0037: the model writes the row, and no trigger its keys.
    call = Call(
        created_by=agent_user,
        to_number="+447400123456",
        vcc_call_id=GUID,
        request_id=uuid.UUID(int=7),
        requested_at=timezone.now(),
    )
    call.insert()
    pk = call.pk
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes("calls"))

    assert keys() == ({str(uuid.UUID(int=7)): pk}, {GUID: pk})
    with pytest.raises(IntegrityError), transaction.atomic():
        make_call(user=agent_user, vcc_call_id=GUID)
    with pytest.raises(IntegrityError), transaction.atomic():
        make_call(user=agent_user, request_id=uuid.UUID(int=7))

"""The database itself refuses to change or delete ledger events."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from ledger import kinds
from ledger.models import LedgerEvent, LedgerImmutableError
from ledger.services import ledger_append

pytestmark = pytest.mark.django_db


@pytest.fixture
def event() -> LedgerEvent:
    ledger_append(kind=kinds.CONTROLLER_STARTED, payload={"n": 1})
    return ledger_append(kind=kinds.CONTROLLER_STARTED, payload={"n": 2})


def test_the_database_refuses_update(event: LedgerEvent) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE ledger_ledgerevent SET actor = 'mallory' WHERE seq = %s", [event.seq]
        )

    assert LedgerEvent.objects.get(seq=event.seq).actor == "system"


def test_the_database_refuses_delete(event: LedgerEvent) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM ledger_ledgerevent")

    assert LedgerEvent.objects.count() == 2


def test_the_orm_refuses_queryset_update_and_delete(event: LedgerEvent) -> None:
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEvent.objects.filter(seq=event.seq).update(actor="mallory")
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEvent.objects.all().delete()

    assert LedgerEvent.objects.filter(actor="system").count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TRUNCATE exists on PostgreSQL only")
def test_the_database_refuses_truncate(event: LedgerEvent) -> None:
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("TRUNCATE ledger_ledgerevent")

    assert LedgerEvent.objects.count() == 2


def test_model_instances_refuse_save_and_delete(event: LedgerEvent) -> None:
    event.actor = "mallory"
    with pytest.raises(LedgerImmutableError):
        event.save()
    with pytest.raises(LedgerImmutableError):
        event.delete()

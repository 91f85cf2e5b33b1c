"""The chain head only moves forward, to the last event; ledger_verify names the first bad seq."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from ledger import kinds
from ledger.chain import GENESIS_HASH, HASHED_FIELDS, event_hash
from ledger.immutability import HEAD, drop_guard, install_guard
from ledger.models import LedgerEvent, LedgerHead, LedgerImmutableError
from ledger.services import ledger_append
from tests.ledger.tampering import guards_dropped, sql

pytestmark = pytest.mark.django_db


def append_events(count: int) -> list[LedgerEvent]:
    return [
        ledger_append(kind=kinds.CONTROLLER_STARTED, actor="tests", payload={"index": index})
        for index in range(count)
    ]


def head() -> tuple[int, str]:
    row = LedgerHead.objects.get(pk=1)
    return row.seq, row.hash


def refused(statement: str, params: list[object], match: str) -> None:
    with pytest.raises(DatabaseError, match=match), transaction.atomic():
        sql(statement, params)


def test_the_database_refuses_to_delete_the_head() -> None:
    events = append_events(3)

    refused("DELETE FROM ledger_ledgerhead", [], "cannot be deleted")

    assert head() == (3, events[-1].hash)


@pytest.mark.parametrize(
    ("seq_of", "hash_of"),
    [(2, 2), (3, 2), (0, 0)],
    ids=["moved back", "hash of another event", "back to genesis"],
)
def test_the_database_refuses_to_move_the_head_anywhere_but_forward_to_the_last_event(
    seq_of: int, hash_of: int
) -> None:
    events = append_events(3)
    hashes = {0: GENESIS_HASH, **{event.seq: event.hash for event in events}}

    refused(
        "UPDATE ledger_ledgerhead SET seq = %s, hash = %s WHERE id = 1",
        [seq_of, hashes[hash_of]],
        "moves only forward",
    )

    assert head() == (3, events[-1].hash)


def test_the_database_refuses_a_head_moved_to_a_seq_with_no_event() -> None:
    events = append_events(2)

    refused(
        "UPDATE ledger_ledgerhead SET seq = 9, hash = %s WHERE id = 1",
        [events[-1].hash],
        "moves only forward",
    )


def test_the_database_refuses_a_new_head_over_existing_events() -> None:
    append_events(2)
    drop_guard(connection, guards=(HEAD,))
    sql("DELETE FROM ledger_ledgerhead")
    install_guard(connection, guards=(HEAD,))

    refused(
        "INSERT INTO ledger_ledgerhead (id, seq, hash) VALUES (1, 0, %s)",
        [GENESIS_HASH],
        "only at the genesis of an empty ledger",
    )


def test_an_append_refuses_to_rebuild_a_deleted_head() -> None:
    append_events(2)
    with guards_dropped():
        sql("DELETE FROM ledger_ledgerhead")

    with pytest.raises(LedgerImmutableError, match="ledger head is missing"), transaction.atomic():
        ledger_append(kind=kinds.TASK_MAPPED)

    assert LedgerEvent.objects.count() == 2


def test_verify_reports_the_head_deleted_together_with_the_tail() -> None:
    append_events(5)
    with guards_dropped():
        sql("DELETE FROM ledger_ledgerevent WHERE seq > 3")
        sql("DELETE FROM ledger_ledgerhead")

    with pytest.raises(CommandError, match=r"broken at seq 4: the ledger head is missing"):
        call_command("ledger_verify")


def forge_event(*, seq: int, prev_hash: str) -> None:
    """An event with a right link and a right hash, inserted straight into the table."""
    template = LedgerEvent.objects.get(seq=1)
    fields = {name: getattr(template, name) for name in HASHED_FIELDS}
    fields |= {"seq": seq, "id": f"forged-{seq}", "actor": "mallory", "prev_hash": prev_hash}
    fields["payload"] = {"forged": True}
    forged = LedgerEvent(**fields, hash=event_hash(fields))
    forged.save(force_insert=True)


def test_verify_names_exactly_the_seq_of_an_appended_forgery() -> None:
    # No schema rights needed: the triggers allow INSERT, and the head is left where it was.
    events = append_events(4)
    forge_event(seq=5, prev_hash=events[-1].hash)

    with pytest.raises(
        CommandError, match=r"broken at seq 5: stored past the ledger head \(seq 4\)"
    ):
        call_command("ledger_verify")


def test_verify_names_the_first_seq_past_a_head_moved_back() -> None:
    events = append_events(5)
    with guards_dropped():
        sql(
            "UPDATE ledger_ledgerhead SET seq = 3, hash = %s WHERE id = 1",
            [events[2].hash],
        )

    with pytest.raises(
        CommandError, match=r"broken at seq 4: stored past the ledger head \(seq 3\)"
    ):
        call_command("ledger_verify")


def test_verify_reports_a_head_whose_hash_was_edited() -> None:
    append_events(3)
    with guards_dropped():
        sql("UPDATE ledger_ledgerhead SET hash = %s WHERE id = 1", ["sha256:" + "f" * 64])

    with pytest.raises(
        CommandError, match=r"broken at seq 3: the ledger head records another hash"
    ):
        call_command("ledger_verify")


def test_a_flushed_ledger_starts_again_from_genesis(capsys: pytest.CaptureFixture[str]) -> None:
    with guards_dropped():
        sql("DELETE FROM ledger_ledgerhead")

    call_command("ledger_verify")
    first = ledger_append(kind=kinds.TASK_MAPPED)

    assert capsys.readouterr().out.strip() == "ok 0 events"
    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert head() == (1, first.hash)

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from ledger import kinds
from ledger.chain import GENESIS_HASH
from ledger.immutability import drop_guard
from ledger.models import LedgerEvent
from ledger.services import EventDraft, LedgerInputError, ledger_append, ledger_append_many

pytestmark = pytest.mark.django_db


def append_events(count: int) -> list[LedgerEvent]:
    return [
        ledger_append(
            kind=kinds.CONTROLLER_STARTED,
            actor="tests",
            payload={"index": index, "ratio": index / 3, "text": "naïve ✓"},
            node_id="root-codebase-system",
        )
        for index in range(count)
    ]


def verify_output(capsys: pytest.CaptureFixture[str]) -> str:
    call_command("ledger_verify")
    return capsys.readouterr().out.strip()


def test_it_chains_events_from_the_genesis_hash_with_gap_free_seqs() -> None:
    events = append_events(4)

    assert [event.seq for event in events] == [1, 2, 3, 4]
    assert events[0].prev_hash == GENESIS_HASH
    assert [event.prev_hash for event in events[1:]] == [event.hash for event in events[:-1]]
    assert len({event.hash for event in events}) == 4


def test_verify_reports_ok_with_the_event_count(capsys: pytest.CaptureFixture[str]) -> None:
    append_events(5)

    assert verify_output(capsys) == "ok 5 events"


def test_verify_accepts_an_empty_ledger(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify_output(capsys) == "ok 0 events"


def test_a_batch_is_appended_in_order_in_one_go() -> None:
    drafts = [EventDraft(kind=kinds.TASK_MAPPED, task_id=f"t{i}") for i in range(3)]

    events = ledger_append_many(drafts=drafts)

    assert [(event.seq, event.task_id) for event in events] == [(1, "t0"), (2, "t1"), (3, "t2")]


def test_a_rolled_back_append_leaves_no_gap() -> None:
    append_events(2)
    with pytest.raises(RuntimeError), transaction.atomic():
        ledger_append(kind=kinds.TASK_MAPPED)
        raise RuntimeError("the surrounding work failed")

    event = ledger_append(kind=kinds.TASK_ROUTED)

    assert event.seq == 3
    assert LedgerEvent.objects.count() == 3


def test_it_refuses_an_unknown_kind_and_writes_nothing() -> None:
    with pytest.raises(LedgerInputError, match="unknown ledger event kind 'made_up'"):
        ledger_append(kind="made_up")

    assert LedgerEvent.objects.count() == 0


def test_it_refuses_a_payload_json_cannot_carry_and_writes_nothing() -> None:
    append_events(1)
    bad = [
        EventDraft(kind=kinds.TASK_MAPPED),
        EventDraft(kind=kinds.TASK_MAPPED, payload={"x": {1, 2}}),
    ]

    with pytest.raises(LedgerInputError, match="payload is not JSON"):
        ledger_append_many(drafts=bad)

    assert LedgerEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [("payload", '{"index": 99}'), ("actor", "mallory"), ("kind", "task_routed")],
)
def test_verify_names_exactly_the_altered_seq(column: str, value: str) -> None:
    append_events(6)
    drop_guard(connection)  # rolled back with the test's transaction
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE ledger_ledgerevent SET {column} = %s WHERE seq = 4", [value])

    with pytest.raises(CommandError, match=r"broken at seq 4: stored hash does not match"):
        call_command("ledger_verify")


def test_verify_detects_a_deleted_event_in_the_middle() -> None:
    append_events(5)
    drop_guard(connection)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_ledgerevent WHERE seq = 3")

    with pytest.raises(CommandError, match=r"broken at seq 3: missing"):
        call_command("ledger_verify")


def test_verify_detects_a_deleted_tail() -> None:
    append_events(5)
    drop_guard(connection)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM ledger_ledgerevent WHERE seq = 5")

    with pytest.raises(
        CommandError, match=r"broken at seq 5: missing; the ledger head records seq 5"
    ):
        call_command("ledger_verify")


def test_verify_detects_a_rewritten_event_whose_hash_was_recomputed() -> None:
    # An attacker who fixes up the altered event's own hash still breaks the
    # link from the next event.
    append_events(5)
    drop_guard(connection)
    forged = LedgerEvent.objects.get(seq=2)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_ledgerevent SET hash = %s WHERE seq = 2", [forged.hash[:-4] + "beef"]
        )

    with pytest.raises(CommandError, match=r"broken at seq 2"):
        call_command("ledger_verify")

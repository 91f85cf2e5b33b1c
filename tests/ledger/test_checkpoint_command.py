"""ledger_verify --checkpoint / --against: the anchor that catches a rewritten chain."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.services import ledger_append, task_trace_record
from tests.ledger.factories import TaskTraceFactory
from tests.ledger.tampering import guards_dropped, rewrite_chain, sql, truncate_chain

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("checkpoint_key"),
]

KEY = "an-operators-checkpoint-key-0123456789"


@pytest.fixture
def checkpoint_key():
    with override_settings(VSM_LEDGER_CHECKPOINT_KEY=KEY):
        yield


def append_events(count: int) -> list[LedgerEvent]:
    return [
        ledger_append(kind=kinds.CONTROLLER_STARTED, actor="tests", payload={"index": index})
        for index in range(count)
    ]


def take_checkpoint() -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("ledger_verify", "--checkpoint", stdout=out, stderr=err)
    return out.getvalue().strip()


def verify_against(checkpoint: str) -> str:
    out = io.StringIO()
    call_command("ledger_verify", "--against", checkpoint, stdout=out)
    return out.getvalue().strip()


def verify_alone() -> str:
    out = io.StringIO()
    call_command("ledger_verify", stdout=out)
    return out.getvalue().strip()


def test_a_checkpoint_names_the_last_event_and_the_summary_goes_to_stderr() -> None:
    events = append_events(3)
    out, err = io.StringIO(), io.StringIO()

    call_command("ledger_verify", "--checkpoint", stdout=out, stderr=err)

    assert out.getvalue().startswith(f"vsmledger1.3.{events[-1].hash}.")
    assert err.getvalue().strip() == "ok 3 events"


def test_the_ledger_holds_its_checkpoint_as_it_grows() -> None:
    append_events(3)
    checkpoint = take_checkpoint()
    append_events(2)
    task_trace_record(trace=TaskTraceFactory.build())

    assert verify_against(checkpoint).startswith("ok 6 events, 1 trace; holds checkpoint seq 3 (")


def test_a_rewritten_chain_passes_on_its_own_and_fails_against_the_checkpoint() -> None:
    append_events(5)
    checkpoint = take_checkpoint()
    rewrite_chain(from_seq=2, edit=lambda fields: fields.update(actor="mallory"))

    assert verify_alone() == "ok 5 events"  # the chain alone cannot tell
    with pytest.raises(
        CommandError,
        match=r"checkpoint seq 5 .* not held: seq 5 now has hash sha256:[0-9a-f]{64}: "
        r"the chain was rewritten at or before that seq",
    ):
        verify_against(checkpoint)


def test_a_chain_cut_back_consistently_fails_against_the_checkpoint() -> None:
    append_events(5)
    checkpoint = take_checkpoint()
    truncate_chain(after_seq=3)

    assert verify_alone() == "ok 3 events"
    with pytest.raises(
        CommandError, match=r"the ledger ends at seq 3, before the checkpoint's seq 5"
    ):
        verify_against(checkpoint)


def test_a_broken_chain_fails_against_a_checkpoint_too() -> None:
    append_events(4)
    checkpoint = take_checkpoint()
    with guards_dropped():
        sql("UPDATE ledger_ledgerevent SET actor = 'mallory' WHERE seq = 2")

    with pytest.raises(CommandError) as raised:
        verify_against(checkpoint)

    assert "ledger chain broken at seq 2" in str(raised.value)
    assert "not held: the chain is broken before seq 4" in str(raised.value)


def test_an_altered_checkpoint_is_refused_before_anything_is_checked() -> None:
    append_events(3)
    checkpoint = take_checkpoint().replace("vsmledger1.3.", "vsmledger1.2.")

    with pytest.raises(CommandError, match=r"checkpoint refused: .*signature is wrong"):
        verify_against(checkpoint)


def test_a_checkpoint_signed_with_another_key_is_refused() -> None:
    append_events(3)
    with override_settings(VSM_LEDGER_CHECKPOINT_KEY="another-key-" + "9" * 30):
        checkpoint = take_checkpoint()

    with pytest.raises(CommandError, match="signature is wrong"):
        verify_against(checkpoint)


@pytest.mark.parametrize("key", ["", "too-short"])
def test_no_checkpoint_without_a_key_of_32_characters(key: str) -> None:
    append_events(1)

    with (
        override_settings(VSM_LEDGER_CHECKPOINT_KEY=key),
        pytest.raises(CommandError, match=r"VSM_LEDGER_CHECKPOINT_KEY: .*set VSM_LEDGER_"),
    ):
        take_checkpoint()


def test_a_checkpoint_is_read_from_a_file_or_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    append_events(2)
    stored = tmp_path / "ledger.checkpoint"
    stored.write_text(take_checkpoint() + "\n")

    assert verify_against(str(stored)).startswith("ok 2 events; holds checkpoint seq 2")
    monkeypatch.setattr("sys.stdin", io.StringIO(stored.read_text()))
    assert verify_against("-").startswith("ok 2 events; holds checkpoint seq 2")


def test_something_that_is_neither_a_checkpoint_nor_a_file_is_refused() -> None:
    with pytest.raises(CommandError, match="neither a checkpoint nor a file"):
        verify_against("no-such-file")

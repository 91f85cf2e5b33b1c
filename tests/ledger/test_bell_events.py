"""A bell carries the events its append committed, and the shared reader hands them out
without reading the ledger when they continue its last seq; anything else still reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async

from ledger import bell, kinds, stream
from ledger.frames import StreamEvent
from ledger.models import LedgerEvent
from ledger.services import EventDraft, ledger_append_many
from tests.ledger.test_stream import (
    append_at,
    communicator,
    receive_frames,
    run,
    session_cookie,
    tree,
)

__all__ = ["session_cookie", "tree"]  # fixtures used by name below

pytestmark = pytest.mark.django_db(transaction=True)


def appended(count: int, node_id: str = "backend-coder") -> list[LedgerEvent]:
    return ledger_append_many(
        drafts=[
            EventDraft(kind=kinds.ENVIRONMENT_SIGNAL, node_id=node_id, payload={"n": n})
            for n in range(count)
        ]
    )


class RecordingLayer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append(message)


def rung(*appends: list[LedgerEvent]) -> list[dict[str, Any]]:
    """The messages a bell sends for these appends, rung back to back (coalesced)."""

    async def scenario() -> list[dict[str, Any]]:
        layer = RecordingLayer()
        ringer = bell._Bell(asyncio.get_running_loop(), layer)
        for events in appends:
            ringer.ring(events[-1].seq, events)
        await asyncio.sleep(0)  # the rings run on this loop, in order, before the sends
        while ringer._pending is not None or ringer._sending is not None:
            await asyncio.sleep(0.005)
        return layer.sent

    return async_to_sync(scenario)()


@pytest.mark.django_db
def test_a_bell_carries_the_frames_the_reader_would_have_read(tree: None) -> None:
    first, second = appended(2), appended(1)

    messages = rung(first, second)

    carried = [event for message in messages for event in message.get("events", [])]
    stored = LedgerEvent.objects.filter(seq__in=[e.seq for e in first + second]).order_by("seq")
    assert carried == [StreamEvent.of(event).as_message() for event in stored]
    assert messages[-1]["seq"] == second[-1].seq


@pytest.mark.django_db
def test_coalesced_rings_with_a_gap_between_them_carry_no_events(tree: None) -> None:
    first = appended(1)
    appended(1)  # committed, but its bell rang elsewhere
    third = appended(1)

    messages = rung(first, third)

    # Rung together, they coalesce into one bell, which would carry seq 1 and 3 without 2:
    # it carries the seq alone.
    assert messages == [{"type": bell.BELL_MESSAGE_TYPE, "seq": third[0].seq}]


@pytest.mark.django_db
def test_a_bell_past_its_bounds_carries_the_seq_alone(tree: None) -> None:
    many = appended(bell.BELL_MAX_EVENTS + 1)

    [message] = rung(many)

    assert message == {"type": bell.BELL_MESSAGE_TYPE, "seq": many[-1].seq}


class Collecting:
    def __init__(self, after_seq: int) -> None:
        self.after_seq = after_seq
        self.seqs: list[int] = []

    def wants(self, event: StreamEvent) -> bool:
        return True

    async def deliver(self, events: Any) -> None:
        self.seqs += [event.seq for event in events]

    async def on_read_failure(self) -> None:
        return None


def belled(seqs: list[int]) -> list[dict[str, Any]]:
    return [
        StreamEvent(
            seq=seq, kind="k", node_id=None, responsible_ancestor_ids=(), frame="{}"
        ).as_message()
        for seq in seqs
    ]


@pytest.mark.parametrize(
    ("after_seq", "batch", "handed_out", "reads"),
    [
        (10, [11, 12], [11, 12], False),  # continues: no read
        (11, [11, 12], [12], False),  # overlaps what it has: the rest, no read
        (12, [11, 12], [], False),  # all seen already: nothing, no read
        (10, [12, 13], [], True),  # a gap: the ledger must be read
    ],
)
def test_the_reader_hands_out_belled_events_only_when_they_continue_its_seq(
    after_seq: int, batch: list[int], handed_out: list[int], reads: bool
) -> None:
    async def scenario() -> tuple[list[int], bool]:
        reader = stream.LedgerReader(layer=None)
        subscriber = Collecting(after_seq)
        reader.subscribers.add(subscriber)
        continued = await reader._hand_out_belled(belled(batch))
        return subscriber.seqs, not continued

    assert async_to_sync(scenario)() == (handed_out, reads)


def test_a_live_event_reaches_the_client_without_a_ledger_read(
    session_cookie: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the web process the append's bell carries its event: the reader, once caught up,
    writes the frame without another read, the same frame a read would give."""
    reads: list[int] = []
    real_events_after = stream.events_after

    async def counted(**kwargs: Any) -> Any:
        reads.append(kwargs["after_seq"])
        return await real_events_after(**kwargs)

    monkeypatch.setattr(stream, "events_after", counted)

    async def scenario() -> tuple[dict[str, Any], int, int]:
        client = communicator("node=backend-system", session_cookie)
        assert (await client.connect())[0]
        await client.receive_nothing(timeout=0.3)  # caught up; the reader's first read done
        before = len(reads)
        event = await database_sync_to_async(append_at)("backend-coder", n=1)
        [frame] = await receive_frames(client, 1, timeout=0.9)  # before the next poll
        after = len(reads)
        await client.disconnect()
        return frame, after - before, event.seq

    frame, reads_for_it, seq = run(scenario)
    assert frame["seq"] == seq
    assert reads_for_it == 0
    stored = LedgerEvent.objects.get(seq=seq)
    assert frame == json.loads(StreamEvent.of(stored).frame)

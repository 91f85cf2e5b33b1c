"""Many writers at once still make one chain with no gaps."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.selectors import ledger_verify
from ledger.services import ledger_append

WRITERS = 8
EVENTS_PER_WRITER = 25


def write_events(writer: int, barrier: threading.Barrier, errors: list[BaseException]) -> None:
    try:
        barrier.wait(timeout=30)
        for index in range(EVENTS_PER_WRITER):
            with transaction.atomic():
                # Two events per transaction: a fork would show as interleaving.
                ledger_append(
                    kind=kinds.TASK_MAPPED, actor=f"writer-{writer}", payload={"i": index}
                )
                ledger_append(
                    kind=kinds.TASK_ROUTED, actor=f"writer-{writer}", payload={"i": index}
                )
    except BaseException as error:  # reported by the test, not lost in the thread
        errors.append(error)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_make_one_valid_chain_without_gaps() -> None:
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=write_events, args=(writer, barrier, errors))
        for writer in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    total = WRITERS * EVENTS_PER_WRITER * 2
    seqs = list(LedgerEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, total + 1))
    assert ledger_verify() == (total, None)
    # Each transaction's pair is adjacent: appends were serialised, not interleaved.
    rows = list(LedgerEvent.objects.order_by("seq").values_list("kind", "actor", "payload"))
    for mapped, routed in zip(rows[::2], rows[1::2], strict=True):
        assert mapped[0] == kinds.TASK_MAPPED and routed[0] == kinds.TASK_ROUTED
        assert mapped[1:] == routed[1:]
    actors = {actor for _, actor, _ in rows}
    assert len(actors) == WRITERS

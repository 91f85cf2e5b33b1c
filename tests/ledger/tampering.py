"""What an attacker with write access to the database does, for the ledger's guard tests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import connection

from ledger.chain import HASHED_FIELDS, event_hash
from ledger.immutability import drop_guard, install_guard
from ledger.models import LedgerEvent


def sql(statement: str, params: Sequence[Any] = ()) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, list(params))


@contextmanager
def guards_dropped() -> Iterator[None]:
    """The attacker has schema rights: the triggers are gone while the block runs."""
    drop_guard(connection)
    try:
        yield
    finally:
        install_guard(connection)


def rewrite_chain(*, from_seq: int, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite every event from ``from_seq`` on, recomputing each hash and link, and the head.

    ``edit`` changes the fields of the event at ``from_seq``; the rest are only relinked. The
    chain then verifies on its own: only a checkpoint can tell.
    """
    events = LedgerEvent.objects.filter(seq__gte=from_seq).order_by("seq")
    previous = LedgerEvent.objects.filter(seq=from_seq - 1).values_list("hash", flat=True).first()
    with guards_dropped():
        for event in events:
            fields = {name: getattr(event, name) for name in HASHED_FIELDS}
            if event.seq == from_seq:
                edit(fields)
            if previous is not None:
                fields["prev_hash"] = previous
            previous = event_hash(fields)
            sql(
                "UPDATE ledger_ledgerevent SET actor = %s, payload = %s, prev_hash = %s, hash = %s"
                " WHERE seq = %s",
                [
                    fields["actor"],
                    json.dumps(fields["payload"]),
                    fields["prev_hash"],
                    previous,
                    event.seq,
                ],
            )
        sql("UPDATE ledger_ledgerhead SET hash = %s WHERE id = 1", [previous])


def truncate_chain(*, after_seq: int) -> None:
    """Delete every event after ``after_seq`` and move the head back to it, consistently."""
    kept = LedgerEvent.objects.get(seq=after_seq)
    with guards_dropped():
        sql("DELETE FROM ledger_ledgerevent WHERE seq > %s", [after_seq])
        sql("UPDATE ledger_ledgerhead SET seq = %s, hash = %s WHERE id = 1", [kept.seq, kept.hash])

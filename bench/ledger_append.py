"""How much an append to the hash-chained ledger costs, beside a raw SQL insert.

Runs against a throwaway test database (created and dropped here) of whatever
DATABASE_URL selects, so the real ledger is never touched:

    .venv/bin/python bench/ledger_append.py [--events 500]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/vsm .venv/bin/python bench/ledger_append.py

Prints p50/p95 per event for: a raw autocommitted INSERT of a row of the same
shape (the floor), ``ledger_append`` with one event per transaction, and
``ledger_append_many`` with ten events per transaction, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vsmsite.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402

from ledger import kinds  # noqa: E402
from ledger.services import EventDraft, ledger_append, ledger_append_many  # noqa: E402

PAYLOAD = {"task_id": "t-1", "title": "Add a health-check endpoint", "tokens": 1142, "ok": True}


def timed(operation: Callable[[int], None], runs: int) -> list[float]:
    samples = []
    for index in range(runs):
        started = time.perf_counter()
        operation(index)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float], per: int = 1) -> tuple[float, float]:
    ordered = sorted(value / per for value in samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500)
    events = parser.parse_args().events
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE bench_raw (seq BIGINT PRIMARY KEY, kind VARCHAR(64), "
                "payload TEXT, prev_hash VARCHAR(71), hash VARCHAR(71))"
            )
        text = json.dumps(PAYLOAD)

        def raw_insert(index: int) -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO bench_raw VALUES (%s, %s, %s, %s, %s)",
                    [index, kinds.TASK_ROUTED, text, "x" * 71, "y" * 71],
                )

        def append_one(index: int) -> None:
            ledger_append(kind=kinds.TASK_ROUTED, payload=PAYLOAD, node_id="backend-coder")

        drafts = [EventDraft(kind=kinds.TASK_ROUTED, payload=PAYLOAD)] * 10

        def append_ten(index: int) -> None:
            ledger_append_many(drafts=drafts)

        print(f"database: {connection.vendor}, {events} events per series")
        raw = summary(timed(raw_insert, events))
        one = summary(timed(append_one, events))
        ten = summary(timed(append_ten, max(events // 10, 1)), per=10)
        print(f"{'series':<38}{'p50 ms':>10}{'p95 ms':>10}{'p50 ratio':>12}")
        for label, (p50, p95) in [
            ("raw INSERT, autocommit (baseline)", raw),
            ("ledger_append, 1 event/transaction", one),
            ("ledger_append_many, 10/transaction", ten),
        ]:
            print(f"{label:<38}{p50:>10.3f}{p95:>10.3f}{p50 / raw[0]:>11.1f}x")
    finally:
        teardown_databases(old_config, verbosity=0)


if __name__ == "__main__":
    main()

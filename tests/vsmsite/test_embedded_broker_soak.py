"""A sustained run through the embedded broker with two worker processes.

Proves the embedded default loses and corrupts nothing: every one of a few
thousand messages of assorted sizes (some published before any worker is up)
is executed, its result is the digest of exactly the payload sent, both
workers share the load, and the broker is empty afterwards.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import string
import time
import uuid
from pathlib import Path

import pytest
from celery import Celery
from django_celery_results.models import TaskResult

from tests.support.processes import celery_worker

MESSAGES = 3000
TIMEOUT_SECONDS = 240


def make_payloads(count: int) -> list[str]:
    rng = random.Random(20261122)
    alphabet = string.printable + "äöüßé✓€漢字"
    return ["".join(rng.choices(alphabet, k=rng.randint(1, 6000))) for _ in range(count)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_workers_drain_thousands_of_messages_without_loss_or_corruption(tmp_path: Path) -> None:
    broker_path = str(tmp_path / "broker.sqlite3")
    broker_env = {"CELERY_BROKER_URL": "embedded://localhost", "VSM_BROKER_PATH": broker_path}
    publisher = Celery("soak", broker="embedded://localhost", set_as_current=False)
    publisher.conf.broker_transport_options = {"database": broker_path}
    queue = f"soak-{uuid.uuid4().hex[:8]}"
    payloads = make_payloads(MESSAGES)
    expected: dict[str, str] = {}

    def publish(batch: list[str]) -> None:
        for payload in batch:
            result = publisher.send_task("vsm.diagnostics.digest", args=[payload], queue=queue)
            expected[result.id] = hashlib.sha256(payload.encode("utf-8")).hexdigest()

    publish(payloads[: MESSAGES // 3])  # waits in the broker until a worker starts
    with (
        celery_worker("soak-a", queues=queue, env=broker_env) as first,
        celery_worker("soak-b", queues=queue, env=broker_env) as second,
    ):
        publish(payloads[MESSAGES // 3 :])
        started = time.monotonic()
        done = 0
        while done < MESSAGES and time.monotonic() - started < TIMEOUT_SECONDS:
            time.sleep(1)
            done = TaskResult.objects.filter(task_id__in=expected.keys()).count()
        elapsed = time.monotonic() - started
        print(f"\n{done}/{MESSAGES} results in {elapsed:.1f}s ({done / elapsed:.0f} tasks/s)")

    results = dict(TaskResult.objects.filter(task_id__in=expected).values_list("task_id", "result"))
    assert len(results) == MESSAGES, f"lost {MESSAGES - len(results)} messages"
    corrupted = [
        task_id for task_id, digest in expected.items() if results[task_id] != f'"{digest}"'
    ]
    assert corrupted == []
    assert TaskResult.objects.filter(task_id__in=expected).exclude(status="SUCCESS").count() == 0
    workers = set(TaskResult.objects.filter(task_id__in=expected).values_list("worker", flat=True))
    assert workers == {first.hostname, second.hostname}
    with sqlite3.connect(broker_path) as broker:
        left = broker.execute(
            "SELECT count(*) FROM kombu_message WHERE queue = ?", (queue,)
        ).fetchone()
    assert left == (0,), "messages left behind (unacknowledged or never consumed)"

"""On the embedded default a worker has no pool process to lose, and a worker that dies, idle
or busy, loses nothing (a zombie's claims: tests/vsmsite/test_embedded_broker.py).

Celery drives the embedded (polling) broker with its blocking prefork pool, whose processes
share one queue lock: SIGKILL one while it waits on that lock (an idle one does) and the worker
stalls for good with its prefetched messages claimed (billiard#104, celery#2011; measured: 0 of
4 directives after one kill). The embedded default therefore runs a worker's tasks in threads
of one process (``CELERY_WORKER_POOL``), and a claim held by a dead process is released by
the next poller. (A worker killed mid-task: test_crash_recovery.py.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_bootstrap
from tests.support.processes import celery_worker, purge_queues, wait_until
from workers.models import Directive
from workers.services.directives import directive_submit
from workers.services.outbox import grace_period, outbox_sweep

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("embedded://"),
        reason="the embedded broker's worker (Redis and RabbitMQ run Celery's asynchronous pool)",
    ),
]
QUEUES = "controllers,leaves"


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def submit(count: int) -> list[str]:
    return [
        directive_submit(
            title=f"directive {n}", metadata={"requires_code_write": "true"}
        ).directive.id
        for n in range(count)
    ]


def all_finished(ids: list[str]) -> bool:
    return Directive.objects.filter(id__in=ids, status=Directive.Status.COMPLETED).count() == len(
        ids
    )


def finished_with_the_sweeper(ids: list[str]) -> Callable[[], bool]:
    """``all_finished``, running the outbox sweeper every few seconds as beat does, its grace
    period taken as already past: a kill between a hop's commit and its publish leaves an
    envelope with no message, which only the sweeper sends (after 60 s in production)."""
    last = [time.monotonic()]

    def condition() -> bool:
        if all_finished(ids):
            return True
        if time.monotonic() - last[0] > 3:
            outbox_sweep(now=timezone.now() + grace_period())
            last[0] = time.monotonic()
        return False

    return condition


def assert_each_once(ids: list[str]) -> None:
    for directive in Directive.objects.filter(id__in=ids):
        assert directive.status == Directive.Status.COMPLETED
        task = directive.tasks.get()
        assert TaskTrace.objects.filter(task_id=task.id).count() == 1
        assert (
            LedgerEvent.objects.filter(
                kind=kinds.DIRECTIVE_COMPLETED, directive_id=directive.id
            ).count()
            == 1
        )
    assert ledger_verify()[1] is None


def test_the_default_worker_runs_its_tasks_in_threads_of_one_process() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    purge_queues(*QUEUES.split(","))
    with celery_worker("threads", queues=QUEUES, concurrency=2) as worker:
        ids = submit(6)
        wait_until(lambda: all_finished(ids), 90, "the directives")
        assert children(worker.process.pid) == []  # no pool process that could die alone
    assert "(thread)" in worker.output  # the banner: "concurrency: 2 (thread)"
    assert_each_once(ids)


def test_a_worker_killed_while_idle_with_work_waiting_loses_nothing() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    purge_queues(*QUEUES.split(","))
    with celery_worker("idle", queues=QUEUES, concurrency=2) as doomed:
        ids = submit(4)
        doomed.kill()  # it may have claimed some of them, and handled a few hops
    with celery_worker("rescuer", queues=QUEUES, concurrency=2):
        wait_until(finished_with_the_sweeper(ids), 90, "the directives after the kill")
    assert_each_once(ids)

"""A Redis restart mid-run loses no directive and duplicates nothing.

The test runs its own ``redis-server`` without persistence, so the restart forgets every
message it held. It restarts Redis while the controller has routed tasks whose leaf messages
wait there (no leaf worker runs yet), so the restart is sure to lose some. Their
envelopes are still unhandled rows, and the outbox sweeper (run here every second with a
short grace period, as beat would every 30 s) sends them again. Every directive completes,
each task has one result and one trace, and the ledger verifies.
"""

from __future__ import annotations

import time

import pytest
from django.db.models import Count
from django.test import override_settings

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_apply_patch, genome_bootstrap
from tests.support.organizations import replace_coder
from tests.support.processes import celery_worker, wait_until
from tests.support.servers import celery_broker, redis_server
from workers.models import Directive, Envelope, Task
from workers.services.directives import directive_submit
from workers.services.outbox import outbox_sweep

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DIRECTIVES = 40
GRACE_SECONDS = 3
QUEUED_AT_RESTART = 10  # leaf deliveries waiting in Redis when it restarts
# A leaf that takes a moment, so that work is queued and in flight when Redis goes.
STEADY_CODER = replace_coder(
    "steady-coder",
    provider="scripted",
    model="steady",
    metadata={"provider.scripted.latency_ms": "100"},
)


def queued_for_leaves(directive_ids: list[str]) -> int:
    """Leaf deliveries committed (their messages sent) and not yet handled."""
    return Envelope.objects.filter(
        correlation_id__in=directive_ids, target_node_id="steady-coder", handled_at__isnull=True
    ).count()


def finished(directive_ids: list[str]) -> int:
    return Directive.objects.filter(
        id__in=directive_ids, status__in=[Directive.Status.COMPLETED, Directive.Status.FAILED]
    ).count()


def sweep_until_finished(directive_ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while finished(directive_ids) < len(directive_ids):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{finished(directive_ids)} of {len(directive_ids)} directives finished "
                f"after {timeout:.0f}s"
            )
        outbox_sweep()
        time.sleep(1)


def assert_each_task_done_once(directive_ids: list[str]) -> None:
    directives = Directive.objects.filter(id__in=directive_ids)
    assert {d.status for d in directives} == {Directive.Status.COMPLETED}
    tasks = Task.objects.filter(directive_id__in=directive_ids)
    assert tasks.count() == len(directive_ids)
    traces = TaskTrace.objects.filter(task_id__in=tasks.values("id"))
    assert traces.count() == tasks.count(), "a task without a trace, or one with two"
    assert not traces.values("task_id").annotate(n=Count("id")).filter(n__gt=1).exists()
    results = LedgerEvent.objects.filter(
        kind=kinds.TASK_RESULT_RECEIVED,
        node_id="root-codebase-system",
        task_id__in=tasks.values("id"),
    )
    assert results.count() == tasks.count(), "a result missing or handled twice at the root"
    settled = LedgerEvent.objects.filter(
        kind=kinds.DIRECTIVE_COMPLETED, directive_id__in=directive_ids
    )
    assert settled.count() == len(directive_ids)
    assert ledger_verify()[1] is None


def test_a_redis_restart_mid_run_loses_no_directive_and_duplicates_nothing() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=STEADY_CODER, actor="operator:test")

    with (
        redis_server() as redis,
        celery_broker(redis.url),
        override_settings(VSM_OUTBOX_GRACE_SECONDS=GRACE_SECONDS),
    ):
        env = {"REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url}
        with celery_worker("controller", queues="controllers", env=env):
            ids = [
                directive_submit(
                    title=f"Survive a Redis restart {n}", metadata={"requires_code_write": "true"}
                ).directive.id
                for n in range(DIRECTIVES)
            ]
            # The controller routes the tasks; no leaf worker runs yet, so their messages
            # wait in Redis: the restart is sure to lose them, however fast the machine.
            wait_until(lambda: queued_for_leaves(ids) >= QUEUED_AT_RESTART, 120, "routed tasks")
            queued_before = queued_for_leaves(ids)
            redis.restart(down_for=1)
            with celery_worker("leaf", queues="leaves", env=env):
                sweep_until_finished(ids, timeout=180)

    assert queued_before >= QUEUED_AT_RESTART
    resent = Envelope.objects.filter(correlation_id__in=ids, resends__gt=0).count()
    assert resent > 0, "nothing was lost, so nothing was proved"
    assert_each_task_done_once(ids)
    print(f"redis restart: {queued_before} leaf messages queued, {resent} envelopes resent")

"""The evolution cycle with a real worker process: the demo's steps, on whichever stack the
suite runs (the embedded default, then PostgreSQL + Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from ledger.models import TaskTrace
from ledger.selectors import ledger_verify
from organization.genome import AddChild, OrganizationalGenome, patch_to_json
from organization.selectors import champion_genome
from organization.services import genome_bootstrap_from
from tests.support.processes import WorkerProcess, celery_worker, purge_queues, wait_until
from trials.demo import ROOT, DemoWorld, demo_genome, run_cycle, submit, wait_finished
from trials.domain.audit import review_leaf
from trials.models import Trial
from trials.services.candidates import suggestion_queue
from trials.services.lifecycle import trial_activate
from trials.services.schedule import trials_tick
from workers.domain.homeostat import (
    GeneSuggestionDraft,
    SafetyLimits,
    SuggestionSource,
    TrialMode,
)
from workers.models import Directive
from workers.services.outbox import grace_period, outbox_sweep

FINISHED = (Directive.Status.COMPLETED, Directive.Status.FAILED)


def names(genome: OrganizationalGenome | None) -> set[str]:
    assert genome is not None
    return {node.name for node in genome.nodes.values()}


pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    with django_db_blocker.unblock():
        purge_queues("controllers", "leaves")
        with celery_worker("evolution", queues="controllers,leaves", concurrency=2) as process:
            yield process


def test_the_cycle_promotes_a_reviewer_that_helps(worker: WorkerProcess) -> None:
    world = DemoWorld(effect=0.5)
    genome_bootstrap_from(genome=demo_genome(world), actor="test", label="demo")
    lines: list[str] = []

    outcome = run_cycle(world=world, say=lines.append, timeout=90, tick=trials_tick)

    report = "\n".join(lines) + "\n" + worker.output[-3000:]
    assert outcome.trial is not None, report
    assert outcome.trial.state == Trial.State.PROMOTED, report
    assert "review-probation-leaf" in names(champion_genome())
    candidate = TaskTrace.objects.filter(metadata__trial_id=outcome.trial.id)
    assert set(candidate.values_list("genome_id", flat=True)) == {
        outcome.trial.candidate_version_id
    }
    # Every trace once: no duplicate work from the worker's redeliveries.
    task_ids = list(TaskTrace.objects.values_list("task_id", "metadata__trial_route_role"))
    assert len(task_ids) == len(set(task_ids))
    assert outcome.ledger_ok, report


# Redis hands an unacknowledged message to another worker only after this long.
RESTART_ENV = {"VSM_REDIS_VISIBILITY_TIMEOUT": "6", "VSM_REDIS_RESTORE_INTERVAL": "1"}


def test_a_live_trial_survives_a_killed_worker_and_the_next_one_decides_it(
    django_db_setup: Any, django_db_blocker: Any
) -> None:
    """Nothing about a live trial lives in a process: kill the worker mid-trial, start a new
    one, and the trial goes on from its rows, with every task traced once."""
    world = DemoWorld(effect=0.5)
    genome = demo_genome(world)
    genome_bootstrap_from(genome=genome, actor="test", label="demo")
    draft = GeneSuggestionDraft(
        suggested_by_node_id=ROOT,
        target_node_id=ROOT,
        source=SuggestionSource.SYSTEM3_STAR_AUDIT,
        patch=patch_to_json(AddChild(parent_id=ROOT, child=review_leaf(genome, ROOT))),
        trial_mode=TrialMode.CANARY,
        safety_limits=SafetyLimits(max_traffic_share_basis_points=5000, max_tasks=80),
    )
    trial = suggestion_queue(draft=draft, actor="test")
    trial_activate(actor="test")
    purge_queues("controllers", "leaves")

    with celery_worker("doomed", queues="controllers,leaves", env=RESTART_ENV) as doomed:
        first = submit(20, label="before the kill")
        wait_until(
            lambda: Directive.objects.filter(id__in=first, status__in=FINISHED).count() >= 5,
            timeout=60,
            what="some directives to finish",
        )
        doomed.kill()
    with celery_worker("survivor", queues="controllers,leaves", env=RESTART_ENV) as survivor:
        # What beat's outbox sweeper does once its grace period has passed (no beat runs
        # here): send again what the dead worker committed but left unsent, such as an
        # onward hop it had yet to run. Anything still queued is only delivered twice, and
        # claimed once.
        outbox_sweep(now=timezone.now() + grace_period())
        wait_finished(first, timeout=120)
        trials_tick()
        sent = 20
        while Trial.objects.get(pk=trial.pk).state == Trial.State.ACTIVE and sent < 300:
            wait_finished(submit(10, label="after the restart"), timeout=120)
            trials_tick()
            sent += 10
        output = survivor.output[-3000:]

    trial.refresh_from_db()
    assert trial.state == Trial.State.PROMOTED, f"{trial.state}: {trial.reason}\n{output}"
    pairs = list(TaskTrace.objects.values_list("task_id", "metadata__trial_route_role"))
    assert len(pairs) == len(set(pairs)), "a task was traced twice"
    assert ledger_verify()[1] is None

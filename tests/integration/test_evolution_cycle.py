"""The evolution cycle with a real worker process: the demo's steps, on whichever stack the
suite runs (the embedded default, then PostgreSQL + Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ledger.models import TaskTrace
from organization.genome import OrganizationalGenome
from organization.selectors import champion_genome
from organization.services import genome_bootstrap_from
from tests.support.processes import WorkerProcess, celery_worker, purge_queues
from trials.demo import DemoWorld, demo_genome, run_cycle
from trials.models import Trial
from trials.services.schedule import trials_tick


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

"""The benchmark's in-process path and a real worker reach the same verdict.

The two are not byte-identical (the worker's ids and clocks are its own, so which tasks fall
in the candidate's exposure bucket differs), so the candidate is one whose effect is clear: the
System 3* audit's reviewer, which lifts the founding champion's success from 0.40 to 0.65. The
full side-by-side run is ``bench/evolution.py --worker-seeds N`` (docs/evolution.md).
"""

from __future__ import annotations

import pytest

from bench.evolution_world.records import Settings
from tests.support.processes import process_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RULE = "sequential_confidence_v1"
ONE_TRIAL = Settings(max_tasks=200, generations=1, watch_tasks=5, baseline=6)


def test_a_real_worker_and_the_in_process_services_reach_the_same_verdict():
    from bench.evolution_world.services import empty_database, run_services
    from bench.evolution_world.worker import purge_queues, run_worker

    in_process = run_services(1, RULE, ONE_TRIAL)
    empty_database()
    purge_queues()
    worker = run_worker(1, RULE, ONE_TRIAL, env=process_env())

    [there] = in_process.trials
    [here] = worker.trials
    assert (here.gene, here.kind) == (there.gene, there.kind) == ("reviewer", "better")
    assert here.state == there.state == "promoted"
    assert worker.champion_rate == in_process.champion_rate
    # The worker did the work: the arms it decided on are its own traces, not the loop's.
    assert here.candidate_traces >= 20 and here.champion_traces >= 20
    assert worker.engine == "worker" and worker.tasks == here.directives + 6 + 5

"""The evolution benchmark in a smoke size: both engines run, and a seed fixes the ledger."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from bench.evolution_world.metrics import aims, figures
from bench.evolution_world.model import run_model
from bench.evolution_world.records import POLICIES, Settings
from bench.evolution_world.world import Structure, best_reachable, is_best

SMOKE = Settings(max_tasks=30, generations=3, watch_tasks=5, baseline=6)


def test_the_world_has_one_best_reachable_structure_within_the_token_budget():
    best = Structure.of(["reviewer", "tester"])
    assert is_best(best) and best.mean_rate == best_reachable()
    assert not is_best(Structure.of(["reviewer", "tester", "full-context"]))  # over budget


def test_the_model_engine_runs_every_policy_and_a_seed_fixes_its_records():
    runs = {policy: [run_model(seed, policy, SMOKE) for seed in (1, 2, 3)] for policy in POLICIES}
    again = run_model(2, POLICIES[0], SMOKE)
    assert [asdict(t) for t in again.trials] == [asdict(t) for t in runs[POLICIES[0]][1].trials]
    by_policy = {policy: figures(policy, seed_runs) for policy, seed_runs in runs.items()}
    assert all(f.trials >= 3 for f in by_policy.values())
    assert len(aims(by_policy, POLICIES[0])) == 7
    # The reference rule promotes the A/A and worse candidates it meets; it never waits long.
    assert by_policy["reference_absolute_v1"].mean_traces < 40


@pytest.mark.slow  # two full runs of the real services: seconds
@pytest.mark.django_db(transaction=True)
def test_the_services_engine_gives_the_same_ledger_for_the_same_seed():
    from bench.evolution_world.services import run_services

    first = run_services(7, "reference_absolute_v1", SMOKE)
    second = run_services(7, "reference_absolute_v1", SMOKE)
    other = run_services(8, "reference_absolute_v1", SMOKE)
    assert first.trials and first.ledger_events > 100
    assert first.ledger_hash == second.ledger_hash
    assert [asdict(t) for t in first.trials] == [asdict(t) for t in second.trials]
    assert other.ledger_hash != first.ledger_hash

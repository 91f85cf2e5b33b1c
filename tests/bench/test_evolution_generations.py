"""The evolution benchmark with ``--source generations``: candidates from the project's own
evolution generation (trials.services.evolution), scored by the world, in the services engine."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest

from bench.evolution_world.model import run_model
from bench.evolution_world.records import POLICIES, Settings
from bench.evolution_world.world import GENE_BY_NAME, structure_from_request
from trials.domain.evolution import PARSIMONY_TEXT

RULE = POLICIES[0]
SMOKE = Settings(max_tasks=30, generations=2, watch_tasks=5, baseline=6, source="generations")


def test_the_world_scores_what_the_generation_operators_produce():
    plain = structure_from_request("", "You are a coding leaf.")
    guarded = structure_from_request("", f"# Behavior rules\n- {PARSIMONY_TEXT}\n")
    assert guarded.genes == {"parsimony"}
    assert guarded.tokens < plain.tokens and guarded.mean_rate < plain.mean_rate
    legacy = structure_from_request("Coding", GENE_BY_NAME["legacy"].prompt_marker or "")
    assert legacy.mean_rate < 0.05 < plain.mean_rate


def test_the_model_engine_keeps_the_scripted_source():
    with pytest.raises(ValueError, match="services engine"):
        run_model(1, RULE, SMOKE)


@pytest.mark.django_db
def test_the_worlds_structure_follows_a_retired_leaf():
    from bench.evolution_world.services import LEGACY, structure_of, world_genome
    from organization.genome import NodeLifecycleStatus, SetNodeStatus, apply_patch

    founding = world_genome("generations")
    assert structure_of(founding).genes == {"legacy"}  # the router reaches the legacy coder first
    retired = apply_patch(
        founding, SetNodeStatus(node_id=LEGACY, status=NodeLifecycleStatus.RETIRED)
    )
    assert structure_of(retired).genes == frozenset()  # the lone coder, as in the scripted world
    assert structure_of(world_genome()).genes == frozenset()


@pytest.mark.slow  # two runs of the real services and the generation: seconds each
@pytest.mark.django_db(transaction=True)
def test_generations_give_candidates_that_reach_a_verdict_and_the_same_ledger_for_a_seed():
    from bench.evolution_world.services import CODER, LEGACY, run_services
    from ledger.models import TaskTrace
    from organization.selectors import champion_genome
    from trials.domain.evolution import RETIRE, SUGGESTION_SOURCE
    from trials.models import EvolutionGeneration, Trial

    first = run_services(3, RULE, SMOKE)
    second = run_services(3, RULE, SMOKE)
    assert first.ledger_hash == second.ledger_hash and first.ledger_events > 100
    assert [asdict(t) for t in first.trials] == [asdict(t) for t in second.trials]

    # Generation 1: the generation service retires the legacy coder, and the rule promotes it.
    offspring = [t for t in second.trials if t.source == "generation"]
    assert offspring, second.trials
    retire = offspring[0]
    assert (retire.generation, retire.operator, retire.gene) == (1, RETIRE, "retire(-legacy)")
    assert retire.state == "promoted" and retire.should_promote and retire.kind == "better"
    assert second.offspring.get(RETIRE) == 1

    # What the run left in the database: the trial is the generation's offspring, and the
    # legacy coder, retired in the champion, no longer gets the work.
    trial = Trial.objects.get(metadata__evolution_operator=RETIRE)
    assert trial.suggestion.source == SUGGESTION_SOURCE
    assert trial.state == Trial.State.PROMOTED
    generation = EvolutionGeneration.objects.get(generation=1)
    assert generation.offspring_trial_ids == [trial.id]
    genome = champion_genome()
    assert genome is not None and genome.nodes[LEGACY].status.value == "Retired"
    latest = TaskTrace.objects.order_by("-started_at").first()
    assert latest is not None and latest.assigned_node_id == CODER

    scripted = run_services(3, RULE, replace(SMOKE, source="scripted"))
    assert scripted.ledger_hash != first.ledger_hash
    assert all(t.source == "scripted" for t in scripted.trials)


@pytest.mark.slow  # a run of the real services: seconds
@pytest.mark.django_db(transaction=True)
def test_an_offspring_a_promotion_superseded_is_rejected_and_counted(monkeypatch):
    from bench.evolution_world import services
    from trials.domain.evolution import PARSIMONY, RETIRE
    from trials.models import Trial

    # Token pressure at once: generation 1 queues a parsimony guardrail beside the retirement.
    monkeypatch.setattr(services, "TOKEN_PRESSURE", 1)
    run = services.run_services(3, RULE, SMOKE)
    # Selection starts the retirement; promoted, it supersedes the guardrail's base, which is
    # rejected at the next activation; the next generation proposes it again on the new champion.
    assert [(t.operator, t.state) for t in run.trials] == [
        (RETIRE, "promoted"),
        (PARSIMONY, "inconclusive"),
    ]
    assert run.offspring == {PARSIMONY: 2, RETIRE: 1} and run.rejected == {PARSIMONY: 1}
    rejected = Trial.objects.get(state=Trial.State.REJECTED)
    assert rejected.metadata["evolution_operator"] == PARSIMONY
    assert "base genome superseded" in rejected.reason

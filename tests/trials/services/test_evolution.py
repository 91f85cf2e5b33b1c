"""Evolution generations against the database: read the ledger, queue the offspring as trials,
record the generation; numbered once per controller; nothing kept on a conflict."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.services import task_trace_record
from organization.genome import (
    AddChild,
    AddTool,
    LeafOperationSpec,
    ModelSpec,
    ToolSpec,
    ViableNode,
    patch_to_json,
)
from organization.models import GenomeVersion
from organization.selectors import champion_version_id, genome_version
from organization.services import genome_apply_patch, genome_bootstrap, genome_rollback
from trials import tasks
from trials.domain.evolution import PARSIMONY, RECOMBINE, RETIRE
from trials.errors import GenerationConflict, GenerationRefused
from trials.models import EvolutionGeneration, GeneSuggestion, Trial
from trials.services import evolution
from trials.services.candidates import suggestion_queue
from trials.services.evaluation import trial_evaluate
from trials.services.evolution import (
    champion_lineage,
    evolution_generation_attempt,
    evolution_generation_run,
)
from trials.services.lifecycle import trial_activate
from workers.domain.homeostat import GeneSuggestionDraft, SuggestionSource
from workers.errors import NoOrganization

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"
CODER = "primary-code-service"
_task_ids = itertools.count()


def trace(
    node: str = CODER,
    *,
    tokens: int = 100,
    merged: bool | None = None,
    score: float = 1.0,
    genome_id: str = "genome-1",
    metadata: dict[str, str] | None = None,
) -> TaskTrace:
    return task_trace_record(
        trace=TaskTrace(
            task_id=f"task-{next(_task_ids)}",
            genome_id=genome_id,
            assigned_node_id=node,
            responsible_ancestor_ids=[ROOT],
            started_at=timezone.now(),
            completed_at=timezone.now(),
            input_tokens=tokens,
            outcome_score=score,
            merged=merged,
            metadata={"task_metadata.requires_code_write": "true", **(metadata or {})},
        )
    )


def pressure(count: int = 5, tokens: int = 130_000) -> None:
    for _ in range(count):
        trace(tokens=tokens)


def add_leaf(name: str, spec: LeafOperationSpec) -> None:
    node = ViableNode.leaf(name, spec, id=name)
    node.model = ModelSpec(provider="echo", model="local-echo")
    genome_apply_patch(patch=AddChild(parent_id=ROOT, child=node), actor="operator:test")


def run() -> EvolutionGeneration | None:
    return evolution_generation_run(controller_node_id=ROOT, actor="operator:test")


def test_token_pressure_queues_a_parsimony_canary_and_records_the_generation(champion) -> None:
    pressure()

    generation = run()

    assert generation is not None
    [trial] = Trial.objects.all()
    assert (generation.controller_node_id, generation.generation) == (ROOT, 1)
    assert generation.offspring_trial_ids == [trial.id]
    assert generation.policy == "system3_deterministic_ga_v1"
    assert generation.selection_policy == "elite_decided_gain_plus_trace_pressure_v1"
    assert generation.genome_id == champion.id
    assert generation.evidence["mutation_operator_counts"] == {PARSIMONY: 1}
    assert generation.evidence["recent_trace_count"] == 5
    assert [op["outcome"] for op in generation.operators] == ["produced", "skipped", "skipped"]
    # The trial: a bounded canary at the controller, stamped with its generation.
    assert (trial.state, trial.mode, trial.controller_node_id) == ("queued", "canary", ROOT)
    assert (trial.traffic_share_basis_points, trial.max_tasks) == (1000, 10)
    assert (trial.max_token_budget, trial.requires_approval) == (100_000, False)
    assert trial.metadata["evolution_generation"] == 1
    assert trial.metadata["evolution_policy"] == "system3_deterministic_ga_v1"
    assert trial.metadata["evolution_operator"] == PARSIMONY
    suggestion = GeneSuggestion.objects.get(pk=trial.pk)
    assert suggestion.source == GeneSuggestion.Source.EVOLUTION_GENERATION
    assert suggestion.evidence[:4] == [
        "evolution_generation=1",
        f"evolution_operator={PARSIMONY}",
        "evolution_parent_trial_ids=",
        "average_tokens=130000",
    ]
    assert suggestion.measurement_plan["window_tasks"] == 10
    # The candidate has the guardrail; the champion does not move.
    candidate = genome_version(version_id=trial.candidate_version_id)
    [rule] = candidate.nodes[ROOT].prompt.behavior_rules
    assert rule.id == "evolution-parsimony-1"
    assert champion_version_id() == champion.id
    events = LedgerEvent.objects.filter(correlation_id=generation.id).order_by("seq")
    assert [event.kind for event in events] == [
        kinds.GENE_SUGGESTION_CREATED,
        kinds.TRIAL_QUEUED,
        kinds.EVOLUTION_GENERATION_CREATED,
    ]
    created = events.last()
    assert created is not None
    assert created.payload["offspring_trial_ids"] == [trial.id]
    assert created.payload["mutation_operator_counts"] == {PARSIMONY: 1}
    assert created.payload["champion_genome_id"] == champion.id


def test_no_offspring_is_no_generation_and_uses_no_number(champion) -> None:
    pressure(tokens=100)

    assert run() is None
    assert not EvolutionGeneration.objects.exists()
    assert not LedgerEvent.objects.filter(kind=kinds.EVOLUTION_GENERATION_CREATED).exists()

    pressure(tokens=500_000)
    generation = run()
    assert generation is not None and generation.generation == 1


def test_generations_are_numbered_per_controller_and_never_repeat_an_offspring(champion) -> None:
    pressure()
    assert (g1 := run()) is not None and g1.generation == 1
    # The guardrail is pending: a second run proposes nothing new.
    assert run() is None
    # A second coder, and the first now failing its tasks: retiring it is new.
    add_leaf("second-coder", LeafOperationSpec.coding())
    for _ in range(5):
        trace(merged=False, score=-10.0)  # -15 each; with the 5 earlier ones it averages -7.65
        trace("second-coder")

    g2 = run()

    assert g2 is not None and g2.generation == 2
    [retire] = Trial.objects.filter(pk__in=g2.offspring_trial_ids)
    assert retire.metadata["evolution_operator"] == RETIRE
    assert Trial.objects.filter(metadata__evolution_operator=PARSIMONY).count() == 1
    EvolutionGeneration.objects.create(controller_node_id="elsewhere", generation=9, policy="p")
    EvolutionGeneration.objects.create(controller_node_id=ROOT, generation=7, policy="p")
    for _ in range(5):
        trace(tokens=2_000_000)
    Trial.objects.update(state=Trial.State.REJECTED)  # the population has room again
    assert (g8 := run()) is not None and g8.generation == 8


def test_work_a_trials_candidate_did_is_not_the_champions_pressure(champion) -> None:
    for _ in range(5):
        trace(tokens=500_000, metadata={"trial_id": "some-trial", "trial_route_role": "control"})

    attempt = evolution_generation_attempt(controller_node_id=ROOT, actor="operator:test")

    assert attempt.generation is None
    assert attempt.plan.recent_trace_count == 0


def test_a_full_population_waits(champion, make_draft: Callable[..., GeneSuggestionDraft]) -> None:
    for index in range(6):
        suggestion_queue(draft=make_draft(name=f"reviewer-{index}"), actor="test")
    pressure()

    attempt = evolution_generation_attempt(controller_node_id=ROOT, actor="operator:test")

    assert attempt.generation is None
    assert attempt.plan.reason == "no capacity: 6 trials queued for a population of 6"


def test_the_only_coder_is_not_retired_while_code_tasks_are_routed(champion) -> None:
    add_leaf("reviewer", LeafOperationSpec.reviewer())
    for _ in range(5):
        trace(merged=False, score=-1.0)  # a code task, scored -6
        trace("reviewer", metadata={"task_metadata.required_capability": "review"})

    attempt = evolution_generation_attempt(controller_node_id=ROOT, actor="operator:test")

    assert attempt.generation is None
    [retire] = [r for r in attempt.plan.reports if r.operator == RETIRE]
    assert "it is the last child that can take requires_code_write=true" in retire.reason


# -- elites from real trials ---------------------------------------------------------------------


def decided_trial(tool: str, *, candidate: tuple[int, int], champion: tuple[int, int]) -> Trial:
    """Queue, activate and decide a trial adding ``tool`` to the coder from real traces."""
    patch = patch_to_json(AddTool(node_id=CODER, tool=ToolSpec(name=tool)))
    draft = GeneSuggestionDraft(
        suggested_by_node_id=ROOT,
        target_node_id=ROOT,
        source=SuggestionSource.SYSTEM3_STAR_AUDIT,
        patch=patch,
    )
    trial = suggestion_queue(draft=draft, actor="test")
    trial_activate(actor="test", trial_id=trial.id)
    trial.refresh_from_db()
    tags = {"trial_id": trial.id, "trial_route_role": "control", "task_metadata.task_class": "code"}
    for success, count in ((True, candidate[0]), (False, candidate[1])):
        for _ in range(count):
            trace(
                genome_id=trial.candidate_version_id,
                merged=None if success else False,
                score=1.0 if success else -1.0,
                metadata=tags,
            )
    for success, count in ((True, champion[0]), (False, champion[1])):
        for _ in range(count):
            trace(
                genome_id=trial.base_version_id,
                merged=None if success else False,
                score=1.0 if success else -1.0,
            )
    return trial_evaluate(trial_id=trial.id)


def test_recombination_never_breeds_from_pruned_trials(champion) -> None:
    """The elites here are one promoted trial (its patch is in the champion now) and two
    pruned ones. The reference would batch the two pruned patches, bringing both losses
    back; this project recombines promoted parents only, so nothing is bred."""
    promoted = decided_trial("lint", candidate=(55, 5), champion=(20, 40))
    assert promoted.state == Trial.State.PROMOTED
    fmt = decided_trial("format", candidate=(10, 50), champion=(45, 15))
    docs = decided_trial("docs", candidate=(12, 48), champion=(45, 15))
    assert (fmt.state, docs.state) == (Trial.State.PRUNED, Trial.State.PRUNED)

    attempt = evolution_generation_attempt(controller_node_id=ROOT, actor="operator:test")

    assert attempt.plan.elites[0].trial_id == promoted.id
    assert {e.trial_id for e in attempt.plan.elites} == {promoted.id, fmt.id, docs.id}
    assert all(o.operator != RECOMBINE for o in attempt.plan.offspring)
    assert not Trial.objects.filter(metadata__evolution_operator=RECOMBINE).exists()
    [report] = [r for r in attempt.plan.reports if r.operator == RECOMBINE]
    assert "1 promoted elite parent(s)" in report.reason
    assert "pruned: a loss is not a parent" in report.reason


def test_the_lineage_follows_a_rollback_to_the_version_it_restored(champion) -> None:
    v2 = genome_apply_patch(
        patch=AddTool(node_id=CODER, tool=ToolSpec(name="a")), actor="operator:test"
    )
    v3 = genome_apply_patch(
        patch=AddTool(node_id=CODER, tool=ToolSpec(name="b")), actor="operator:test"
    )
    v4 = genome_rollback(to_version_id=v2.id, actor="operator:test", reason="b regressed")

    assert champion_lineage(v4.id) == {v4.id, v2.id, champion.id}
    assert v3.id not in champion_lineage(v4.id)
    assert GenomeVersion.objects.get(id=v4.id).parent_id == v3.id  # the chain says otherwise


# -- conflicts, refusals, beat -------------------------------------------------------------------


def test_a_generation_recorded_meanwhile_keeps_nothing_of_this_one(champion, monkeypatch) -> None:
    pressure()
    read = evolution._inputs

    def racing(*args: Any, **kwargs: Any) -> Any:
        inputs = read(*args, **kwargs)
        EvolutionGeneration.objects.create(controller_node_id=ROOT, generation=1, policy="other")
        return inputs

    monkeypatch.setattr(evolution, "_inputs", racing)

    with pytest.raises(GenerationConflict, match="generation 1 of root-codebase-system"):
        run()

    assert not EvolutionGeneration.objects.exists()  # the racing row rolled back with it
    assert not Trial.objects.exists()
    assert not LedgerEvent.objects.filter(kind=kinds.TRIAL_QUEUED).exists()


@pytest.mark.parametrize(
    ("controller", "message"),
    [
        ("ghost", "'ghost' is not a node of the champion genome"),
        (CODER, f"'{CODER}' is a System 1 leaf, not a metasystem"),
    ],
)
def test_only_a_metasystem_of_the_champion_evolves(champion, controller: str, message: str) -> None:
    with pytest.raises(GenerationRefused, match=message):
        evolution_generation_run(controller_node_id=controller, actor="operator:test")


def test_before_bootstrap_there_is_nothing_to_evolve(db: None) -> None:
    with pytest.raises(NoOrganization):
        run()


def test_the_beat_task_runs_a_generation_for_every_metasystem(db: None) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    for _ in range(5):
        task_trace_record(
            trace=TaskTrace(
                task_id=f"task-{next(_task_ids)}",
                genome_id="g",
                assigned_node_id="backend-coder",
                responsible_ancestor_ids=["backend-system", ROOT],
                started_at=timezone.now(),
                input_tokens=150_000,
            )
        )

    outcomes = tasks.evolution.run()

    assert set(outcomes) == {ROOT, "backend-system"}
    generations = {g.controller_node_id: g.id for g in EvolutionGeneration.objects.all()}
    assert outcomes == generations
    assert tasks.evolution.run(controller_node_id="ghost")["ghost"].startswith("skipped:")


def test_beat_sync_declares_the_hourly_evolution_schedule(champion) -> None:
    call_command("beat_sync", stdout=StringIO())

    row = PeriodicTask.objects.get(name="vsm.trials.evolution")
    assert (row.task, row.queue, row.enabled) == ("vsm.trials.evolution", "controllers", True)
    assert (row.interval.every, row.interval.period) == (3600, "seconds")

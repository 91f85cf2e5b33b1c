"""``manage.py evolution_generation``: run a generation now, print what each operator did."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from ledger.models import TaskTrace
from ledger.services import task_trace_record
from organization.genome import AddTool, ToolSpec, patch_to_json
from organization.services import genome_bootstrap
from trials.models import EvolutionGeneration, Trial
from trials.services.candidates import suggestion_queue
from workers.domain.homeostat import GeneSuggestionDraft, SuggestionSource

pytestmark = pytest.mark.django_db

ROOT = "root-codebase-system"


def run(*args: str) -> str:
    out = StringIO()
    call_command("evolution_generation", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def nested() -> None:
    genome_bootstrap(template="nested", actor="operator:test")


def seed(count: int, tokens: int) -> None:
    for index in range(count):
        task_trace_record(
            trace=TaskTrace(
                task_id=f"task-{index}",
                genome_id="g",
                assigned_node_id="backend-coder",
                responsible_ancestor_ids=["backend-system", ROOT],
                started_at=timezone.now(),
                input_tokens=tokens,
            )
        )


def test_it_prints_the_generation_each_operator_and_the_queued_trial(nested: None) -> None:
    seed(5, 150_000)

    output = run("--controller", "backend-system")

    generation = EvolutionGeneration.objects.get()
    [trial] = Trial.objects.all()
    assert (
        f"generation 1 of backend-system (id {generation.id}, champion {generation.genome_id}, "
        "policy system3_deterministic_ga_v1): 1 offspring queued" in output
    )
    assert "capacity 4 (0 queued), 5 recent traces, 0 elite parent(s)" in output
    assert (
        "add_prompt_parsimony_guardrail: produced: average_tokens=150000; trace_count=5" in output
    )
    assert (
        "retire_low_fitness_child: skipped: backend-system has 1 live child(ren); retiring "
        "needs more than one" in output
    )
    assert (
        "recombine_elite_parent_patches: skipped: 0 promoted elite parent(s); recombination "
        "needs two" in output
    )
    assert (
        f"queued trial {trial.id}: add_prompt_parsimony_guardrail (add_prompt_component, "
        "canary, 1000 bp, at most 10 tasks)" in output
    )


def test_with_nothing_to_propose_it_says_why_and_records_no_generation(nested: None) -> None:
    seed(5, 1_000)

    output = run("--controller", "backend-system")

    assert "no generation for backend-system (it would have been generation 1, champion" in output
    assert "average tokens 1000 is below the threshold 120000" in output
    assert not EvolutionGeneration.objects.exists()


def test_without_a_controller_it_evolves_every_metasystem(nested: None) -> None:
    seed(5, 150_000)

    output = run()

    assert "generation 1 of root-codebase-system" in output
    assert "generation 1 of backend-system" in output
    assert EvolutionGeneration.objects.count() == 2


def test_a_full_population_is_reported(nested: None) -> None:
    for index in range(6):
        patch = patch_to_json(AddTool(node_id="backend-coder", tool=ToolSpec(name=f"t{index}")))
        draft = GeneSuggestionDraft(
            suggested_by_node_id="backend-system",
            target_node_id="backend-system",
            source=SuggestionSource.SYSTEM3_STAR_AUDIT,
            patch=patch,
        )
        suggestion_queue(draft=draft, actor="operator:test")
    seed(5, 150_000)

    output = run("--controller", "backend-system")

    assert "no capacity: 6 trials queued for a population of 6" in output
    assert Trial.objects.count() == 6


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--controller", "ghost"), "'ghost' is not a node of the champion genome"),
        (
            ("--controller", "backend-coder"),
            "'backend-coder' is a System 1 leaf, not a metasystem: only a metasystem evolves "
            "its children",
        ),
    ],
)
def test_it_refuses_a_node_that_cannot_evolve(
    nested: None, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not EvolutionGeneration.objects.exists()


def test_before_bootstrap_it_says_there_is_no_organization(db: None) -> None:
    with pytest.raises(CommandError, match="there is no organization yet"):
        run()

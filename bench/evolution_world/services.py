"""The services engine: the loop through the real services, envelopes delivered in process.

Per generation: a candidate (the System 3* audit's reviewer first, then the scripted source,
queued with ``suggestion_queue``) → ``trials_tick`` activates it → directives one at a time,
every envelope handled in order by ``controller_receive`` / ``leaf_execute`` (Celery publishing
patched out), the trial evaluated after every trace as the runtime asks (on commit) → the
decision, promotion with its watch window (``trials_tick`` → ``watch_check`` → rollback) or
prune. The world provider replaces the coder's model: it reads the structure from the request
and draws the outcome from the world. Needs Django set up and an empty test database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from unittest import mock

from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection

from ledger.immutability import drop_guard, install_guard
from ledger.models import LedgerHead
from ledger.selectors import ledger_verify
from ledger.services import ledger_batch
from organization.genome import (
    LeafOperationSpec,
    ModelSpec,
    OrganizationalGenome,
    PromptComponent,
    PromptSection,
    ViableNode,
    single_coder,
)
from organization.genome.patches import AddChild, AddPromptComponent, patch_to_json
from organization.selectors import _version_cache, champion_genome
from organization.services import genome_bootstrap_from
from trials.domain.audit import RuleBasedSystem3StarAuditor, review_leaf
from trials.models import Trial
from trials.services.audits import audit_run
from trials.services.candidates import suggestion_queue
from trials.services.promotion import trial_conclude
from trials.services.schedule import trials_tick
from workers.domain.homeostat import GeneSuggestionDraft, SafetyLimits, SuggestionSource, TrialMode
from workers.models import Directive
from workers.providers.base import ModelRequest, ModelResponse, ProviderError, Usage
from workers.services.controller import controller_receive
from workers.services.directives import directive_submit
from workers.services.leaf import leaf_execute
from workers.services.transport import CONTROLLER_QUEUE

from .determinism import Clock, deterministic
from .records import SeedRun, Settings, TrialRecord
from .source import ScriptedSource
from .world import (
    GENE_BY_NAME,
    Structure,
    is_best,
    outcome,
    should_promote,
    structure_from_request,
    task_class,
    trial_kind,
)

ROOT = "root-codebase-system"
CODER = "primary-code-service"
ACTOR = "bench:evolution"
FINAL = {"promoted", "pruned", "inconclusive", "rolled_back", "frozen", "rejected"}


class WorldProvider:
    """The coder's model: the outcome of task number ``bench_task`` under the structure its
    request shows, from the world's common random numbers."""

    def __init__(self, seed: int, clock: Clock, state: dict[str, Any]) -> None:
        self.seed, self.clock, self.state = seed, clock, state

    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        metadata = json.loads(request.input).get("metadata", {})
        number = int(metadata["bench_task"])
        structure = structure_from_request(
            request.metadata.get("peer_leaf_kinds", ""), request.instructions
        )
        result = outcome(self.seed, number, metadata["task_class"], structure)
        self.clock.advance_ms(result.latency_ms)
        self.state["tokens"] += result.input_tokens + result.output_tokens
        if structure.mean_rate < self.state["best_so_far"] - 1e-9:
            self.state["regret"] += 1
        usage = Usage(input_tokens=result.input_tokens, output_tokens=result.output_tokens)
        if not result.success:
            raise ProviderError("request", f"world: task {number} failed", usage=usage)
        return ModelResponse(output_text=f"world: task {number} done", usage=usage)


def world_genome() -> OrganizationalGenome:
    genome = single_coder()
    genome.nodes[CODER].model = ModelSpec(provider="scripted", model="world")
    return genome


def structure_of(genome: OrganizationalGenome) -> Structure:
    """The world's view of a genome: the coder's live siblings and its prompt."""
    coder = genome.nodes[CODER]
    peers = ",".join(
        str(node.leaf_operation.kind)
        for node_id in genome.nodes[ROOT].children
        if node_id != CODER
        and (node := genome.nodes[node_id]).leaf_operation.kind is not None
        and node.status.value != "Retired"
    )
    prompt = coder.prompt
    texts = " ".join(
        c.text
        for section in (prompt.behavior_rules, prompt.domain_hints)
        for c in section
        if c.active
    )
    return structure_from_request(peers, texts)


def gene_patch(name: str, genome: OrganizationalGenome) -> dict[str, Any]:
    gene = GENE_BY_NAME[name]
    if name == "reviewer":
        return patch_to_json(AddChild(parent_id=ROOT, child=review_leaf(genome, ROOT)))
    if name == "tester":
        leaf = ViableNode.leaf("test-leaf", LeafOperationSpec.tester())
        leaf.model = replace(genome.nodes[CODER].model)
        return patch_to_json(AddChild(parent_id=ROOT, child=leaf))
    assert gene.prompt_marker is not None
    section = PromptSection.DOMAIN_HINTS if gene.kind == "aa" else PromptSection.BEHAVIOR_RULES
    component = PromptComponent(text=gene.prompt_marker, tags=["evolution-bench"])
    return patch_to_json(AddPromptComponent(node_id=CODER, section=section, component=component))


def limits(settings: Settings) -> SafetyLimits:
    return SafetyLimits(
        max_tasks=settings.max_tasks, max_traffic_share_basis_points=settings.share_basis_points
    )


def empty_database() -> None:
    drop_guard(connection)
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        install_guard(connection)
    ContentType.objects.clear_cache()
    _version_cache.clear()


class Loop:
    def __init__(self, seed: int, policy: str, settings: Settings, clock: Clock) -> None:
        self.seed, self.policy, self.settings, self.clock = seed, policy, settings, clock
        self.task_number = 0
        self.state: dict[str, Any] = {"tokens": 0, "regret": 0, "best_so_far": 0.0}
        self.outbox: list[tuple[str, str]] = []
        self.run = SeedRun(seed=seed, policy=policy, engine="services")

    def capture(self, *, envelope_id: str, queue: str) -> None:
        self.outbox.append((envelope_id, queue))

    def directive(self) -> None:
        """One directive, submitted and handled to its end."""
        directive = self.submit()
        self.deliver(directive.id)

    def submit(self) -> Directive:
        number = self.task_number
        self.task_number += 1
        submission = directive_submit(
            title=f"task {number}",
            metadata={
                "requires_code_write": "true",
                "task_class": task_class(self.seed, number),
                "task.metadata.bench_task": str(number),
            },
            origin="bench",
        )
        return submission.directive

    def deliver(self, directive_id: str) -> None:
        """Every envelope the directive causes, handled in order in this process."""
        while self.outbox:
            envelope_id, queue = self.outbox.pop(0)
            if queue == CONTROLLER_QUEUE:
                controller_receive(envelope_id=envelope_id, worker="bench")
            else:
                leaf_execute(envelope_id=envelope_id, worker="bench")

    def tokens(self) -> int:
        """Every token the world's provider has spent so far."""
        return int(self.state["tokens"])

    def queue(self, generation: int, gene: str) -> Trial:
        if generation == 1 and gene == "reviewer":
            auditor = RuleBasedSystem3StarAuditor(
                trial_mode=TrialMode.CANARY,
                traffic_share_basis_points=self.settings.share_basis_points,
                max_tasks=self.settings.max_tasks,
                max_token_budget=None,
                requires_approval=False,
            )
            run = audit_run(
                controller_node_id=ROOT, trigger="command", actor=ACTOR, auditor=auditor
            )
            trial = Trial.objects.filter(suggestion__audit_run=run).first()
            if trial is not None:
                return trial
        genome = champion_genome()
        assert genome is not None
        draft = GeneSuggestionDraft(
            suggested_by_node_id=ROOT,
            target_node_id=ROOT,
            source=SuggestionSource.OTHER,
            other_source="evolution_bench_scripted",
            patch=gene_patch(gene, genome),
            evidence=[f"bench_gene={gene}", f"generation={generation}"],
            hypothesis=GENE_BY_NAME[gene].description,
            trial_mode=TrialMode.CANARY,
            safety_limits=limits(self.settings),
        )
        return suggestion_queue(draft=draft, actor=ACTOR)

    def trial(self, generation: int, gene: str) -> TrialRecord:
        base = structure_of(champion_genome())  # type: ignore[arg-type]
        candidate = Structure(base.genes | {gene})
        trial = self.queue(generation, gene)
        if self.policy != "sequential_confidence_v1":
            Trial.objects.filter(pk=trial.pk).update(metadata={"decision_rule": self.policy})
        trials_tick(actor=ACTOR)
        tokens_before, directives = self.tokens(), 0
        state = Trial.objects.values_list("state", flat=True).get(pk=trial.pk)
        while state == Trial.State.ACTIVE and directives < self.settings.directive_budget:
            self.directive()
            directives += 1
            state = Trial.objects.values_list("state", flat=True).get(pk=trial.pk)
        if state == Trial.State.ACTIVE:
            with ledger_batch():
                locked = Trial.objects.select_for_update().get(pk=trial.pk)
                trial_conclude(trial=locked, actor=ACTOR, reason="bench: directive budget spent")
        trial.refresh_from_db()
        if trial.state == Trial.State.PROMOTED:
            for _ in range(self.settings.watch_tasks):
                self.directive()
            trials_tick(actor=ACTOR)
            trial.refresh_from_db()
        return TrialRecord(
            seed=self.seed,
            policy=self.policy,
            generation=generation,
            gene=gene,
            kind=trial_kind(candidate, base),
            gain=candidate.mean_rate - base.mean_rate,
            token_ratio=candidate.token_factor / base.token_factor,
            should_promote=should_promote(candidate, base),
            state=str(trial.state),
            candidate_traces=trial.candidate_traces,
            champion_traces=trial.champion_traces,
            directives=directives,
            tokens=self.tokens() - tokens_before,
        )

    def go(self) -> SeedRun:
        started = time.perf_counter()
        run, source = self.run, ScriptedSource(self.seed)
        genome_bootstrap_from(genome=world_genome(), actor=ACTOR, label="evolution-world")
        champion = structure_of(champion_genome())  # type: ignore[arg-type]
        self.state["best_so_far"] = champion.mean_rate
        run.champion_rate.append(champion.mean_rate)
        for _ in range(self.settings.baseline):
            self.directive()
        for generation in range(1, self.settings.generations + 1):
            gene = source.next(champion.genes)
            if gene is not None:
                record = self.trial(generation, gene)
                source.tried(gene, record.state)
                run.trials.append(record)
                champion = structure_of(champion_genome())  # type: ignore[arg-type]
                self.state["best_so_far"] = max(self.state["best_so_far"], champion.mean_rate)
            run.champion_rate.append(champion.mean_rate)
            if run.generations_to_best is None and is_best(champion):
                run.generations_to_best = generation
        run.tasks = self.task_number
        run.regret_tasks = self.state["regret"]
        head = LedgerHead.objects.get()
        count, problem = ledger_verify()
        if problem is not None:
            raise AssertionError(f"ledger chain broken: {problem}")
        run.ledger_hash, run.ledger_events = head.hash, count
        run.seconds = time.perf_counter() - started
        return run


@contextmanager
def world(seed: int, policy: str) -> Iterator[Clock]:
    """Ids, clocks and the coder's model fixed by (seed, policy), for one run."""
    with deterministic(f"evolution-{seed}-{policy}") as clock:
        yield clock


def run_services(seed: int, policy: str, settings: Settings) -> SeedRun:
    """One seed under one policy through the real services, on an emptied database."""
    empty_database()
    with world(seed, policy) as clock:
        loop = Loop(seed, policy, settings, clock)
        provider = WorldProvider(seed, clock, loop.state)
        with (
            mock.patch("workers.services.leaf.provider_for", return_value=provider),
            mock.patch("workers.services.transport.envelope_send", side_effect=loop.capture),
        ):
            return loop.go()

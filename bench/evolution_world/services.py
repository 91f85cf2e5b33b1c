"""The services engine: the loop through the real services, envelopes delivered in process.

Per generation: a candidate (the System 3* audit's reviewer first, then the scripted source,
queued with ``suggestion_queue``) → ``trials_tick`` activates it → directives one at a time,
every envelope handled in order by ``controller_receive`` / ``leaf_execute`` (Celery publishing
patched out), the trial evaluated after every trace as the runtime asks (on commit) → the
decision, promotion with its watch window (``trials_tick`` → ``watch_check`` → rollback) or
prune. The world provider replaces the coder's model: it reads the structure from the request
and draws the outcome from the world. Needs Django set up and an empty test database.

``Settings.source == "generations"``: the founding genome has a legacy coder before the coder;
each generation's candidate is an offspring of ``evolution_generation_attempt`` (the real
service, run whenever nothing is queued at the root, with the bench's trial bounds) while one
is queued, else the scripted source's next gene; whichever ``trials_tick`` activates is run.
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
    apply_patch,
    parse_patch,
    single_coder,
)
from organization.genome.patches import AddChild, AddPromptComponent, patch_to_json
from organization.selectors import _version_cache, champion_genome
from organization.services import genome_bootstrap_from
from trials.domain.audit import RuleBasedSystem3StarAuditor, review_leaf
from trials.domain.evolution import PARSIMONY, RECOMBINE, RETIRE, EvolutionPolicy
from trials.models import Trial
from trials.services.audits import audit_run
from trials.services.candidates import suggestion_queue
from trials.services.evolution import evolution_generation_attempt
from trials.services.promotion import trial_conclude
from trials.services.schedule import trials_tick
from workers.domain.homeostat import GeneSuggestionDraft, SafetyLimits, SuggestionSource, TrialMode
from workers.domain.messages import TaskPacket
from workers.domain.prompt import build_model_request
from workers.domain.routing import route
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
    BASE_TOKENS,
    GENE_BY_NAME,
    LEGACY_MARKER,
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
LEGACY = "legacy-coder"
ACTOR = "bench:evolution"
OPERATOR_LABEL = {PARSIMONY: "parsimony", RETIRE: "retire", RECOMBINE: "recombine"}
# The world's tokens are ~500 a task, not the production threshold's 120 000: token pressure
# when the recent traces average 5% over the founding cost.
TOKEN_PRESSURE = int(BASE_TOKENS * 1.05)
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


def world_genome(source: str = "scripted") -> OrganizationalGenome:
    """A lone coder; for ``--source generations`` a legacy coder beside it that the router
    reaches first (so the generation has a low-fitness child to retire)."""
    genome = single_coder()
    genome.nodes[CODER].model = ModelSpec(provider="scripted", model="world")
    if source == "generations":
        legacy = ViableNode.leaf(LEGACY, LeafOperationSpec.coding(), id=LEGACY)
        legacy.system_5.identity = "Legacy coding leaf, kept from an older organization."
        legacy.model = ModelSpec(provider="scripted", model="world")
        legacy.prompt.behavior_rules.append(
            PromptComponent(id="legacy-style", text=LEGACY_MARKER, tags=["evolution-bench"])
        )
        genome = apply_patch(genome, AddChild(parent_id=ROOT, child=legacy))
        root = genome.nodes[ROOT]
        root.children = [LEGACY, *(child for child in root.children if child != LEGACY)]
    return genome


def structure_of(genome: OrganizationalGenome) -> Structure:
    """The world's view of a genome: what the request of the leaf its router gives a code task
    shows (its live sibling leaves' kinds, its own active prompt), as the provider reads it."""
    task = TaskPacket(id="bench-structure", title="structure", metadata=CODE_TASK)
    leaf = route(genome, ROOT, task).child_id
    request = build_model_request(genome, leaf, task)
    return structure_from_request(request.metadata["peer_leaf_kinds"], request.instructions)


CODE_TASK = {"requires_code_write": "true", "task_class": "code"}


def evolution_policy(settings: Settings) -> EvolutionPolicy:
    """The generation's policy with the scripted candidates' trial bounds (instead of the
    production probation, 10 tasks at a 10% share), so their trials compare, and the world's
    token scale (about 500 a task, not the production threshold's 120 000)."""
    return EvolutionPolicy(
        high_average_token_threshold=TOKEN_PRESSURE,
        probation_max_tasks=settings.max_tasks,
        probation_token_budget=10**9,
        canary_traffic_share_basis_points=settings.share_basis_points,
    )


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
        self.evolution = evolution_policy(settings)
        self.offspring_ids: set[str] = set()
        self.scripted_yet = False  # --source generations: the first scripted gene is audited

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

    def queue(self, generation: int, gene: str, *, audit: bool | None = None) -> Trial:
        """Queue the scripted source's gene: the reviewer through the System 3* audit when
        ``audit`` (by default: in generation 1)."""
        if audit is None:
            audit = generation == 1
        if audit and gene == "reviewer":
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
        """The scripted source's trial of ``gene``: queued, activated, run to its end."""
        genome = champion_genome()
        assert genome is not None
        trial = self.queue(generation, gene)
        if self.policy != "sequential_confidence_v1":
            Trial.objects.filter(pk=trial.pk).update(metadata={"decision_rule": self.policy})
        trials_tick(actor=ACTOR)
        return self.conduct(trial, generation, gene, genome)

    def conduct(
        self, trial: Trial, generation: int, gene: str, genome: OrganizationalGenome
    ) -> TrialRecord:
        """Directives until the active ``trial`` ends (or the bench's budget for it is spent),
        then its watch window if promoted. ``genome``: the champion it was tried against."""
        base = structure_of(genome)
        candidate = structure_of(apply_patch(genome, parse_patch(trial.suggestion.patch)))
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
        operator = str(trial.metadata.get("evolution_operator", ""))
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
            source="generation" if operator else "scripted",
            operator=operator,
        )

    def generation_slot(
        self, generation: int, source: ScriptedSource, champion: Structure
    ) -> TrialRecord | None:
        """One trial under ``--source generations``: the evolution generation's offspring while
        any is queued (a generation runs when none is), else the scripted source's next gene;
        the trial ``trials_tick`` activates is run. A queued offspring whose base a promotion
        superseded is rejected at activation (counted in ``run.rejected``); then try again."""
        for _ in range(3):
            queued = Trial.objects.filter(state=Trial.State.QUEUED, controller_node_id=ROOT)
            if not queued.exists():
                attempt = evolution_generation_attempt(
                    controller_node_id=ROOT, actor=ACTOR, policy=self.evolution
                )
                for offspring in attempt.trials:
                    operator = str(offspring.metadata["evolution_operator"])
                    self.run.offspring[operator] = self.run.offspring.get(operator, 0) + 1
                    self.offspring_ids.add(offspring.pk)
            gene = None
            if not queued.exists():
                gene = source.next(champion.genes)
                if gene is None:
                    return None
                self.queue(generation, gene, audit=not self.scripted_yet)
                self.scripted_yet = True
            if self.policy != "sequential_confidence_v1":
                for waiting in queued:
                    waiting.metadata = {**waiting.metadata, "decision_rule": self.policy}
                    waiting.save(update_fields=["metadata"])
            genome = champion_genome()
            assert genome is not None
            report = trials_tick(actor=ACTOR)
            self.count_rejected()
            if not report.activated:
                continue
            trial = Trial.objects.select_related("suggestion").get(pk=report.activated[0])
            operator = str(trial.metadata.get("evolution_operator", ""))
            if operator:
                label = OPERATOR_LABEL.get(operator, operator)
                changed = structure_of(apply_patch(genome, parse_patch(trial.suggestion.patch)))
                diff = [f"+{g}" for g in sorted(changed.genes - champion.genes)] + [
                    f"-{g}" for g in sorted(champion.genes - changed.genes)
                ]
                record = self.conduct(trial, generation, f"{label}({''.join(diff)})", genome)
            else:
                assert gene is not None
                record = self.conduct(trial, generation, gene, genome)
                source.tried(gene, record.state)
            return record
        return None

    def count_rejected(self) -> None:
        rejected = Trial.objects.filter(pk__in=self.offspring_ids, state=Trial.State.REJECTED)
        for trial_id, metadata in rejected.values_list("pk", "metadata"):
            operator = str(metadata.get("evolution_operator", ""))
            self.run.rejected[operator] = self.run.rejected.get(operator, 0) + 1
            self.offspring_ids.discard(trial_id)

    def go(self) -> SeedRun:
        started = time.perf_counter()
        run, source = self.run, ScriptedSource(self.seed)
        generations = self.settings.source == "generations"
        genome_bootstrap_from(
            genome=world_genome(self.settings.source), actor=ACTOR, label="evolution-world"
        )
        champion = structure_of(champion_genome())  # type: ignore[arg-type]
        self.state["best_so_far"] = champion.mean_rate
        run.champion_rate.append(champion.mean_rate)
        for _ in range(self.settings.baseline):
            self.directive()
        for generation in range(1, self.settings.generations + 1):
            record: TrialRecord | None = None
            if generations:
                record = self.generation_slot(generation, source, champion)
            elif (gene := source.next(champion.genes)) is not None:
                record = self.trial(generation, gene)
                source.tried(gene, record.state)
            if record is not None:
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
        # Plain functions, not mocks: a mock keeps every call it gets (thousands a seed).
        with (
            mock.patch("workers.services.leaf.provider_for", new=lambda *_, **__: provider),
            mock.patch("workers.services.transport.envelope_send", new=loop.capture),
        ):
            return loop.go()

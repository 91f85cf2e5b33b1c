"""The fast engine: the loop's protocol replayed without the database, on the same world.

It uses the project's own pure code where the services do: the exposure bucket
(``workers.domain.trial_routing.exposure_bucket``), the decision policies
(``trials.domain.decision``: ``decide``, ``comparison_decision``, ``significantly_worse``) and
the same evidence rules as ``trials.services.evaluation`` (the candidate's traces since the
trial started, the champion's over the same window, the rule after every trace, exhausted at the
candidate's maximum or when every routable task has its trace), promotion with its watch window
and rollback. Ids are drawn from the seed, so the split between the arms differs from the
services engine's task by task but follows the same law; ``bench/evolution.py`` prints both
engines side by side on the same seeds.
"""

from __future__ import annotations

import random
import time
import uuid

from trials.domain.decision import (
    ArmSummary,
    Decision,
    DecisionSettings,
    Observation,
    Verdict,
    decide,
    significantly_worse,
)
from trials.domain.decision.naive import COMPARISON_RULES, comparison_decision
from workers.domain.trial_routing import exposure_bucket

from .records import SeedRun, Settings, TrialRecord
from .source import ScriptedSource
from .world import Structure, is_best, outcome, should_promote, task_class, trial_kind

STATES = {
    Verdict.PROMOTE: "promoted",
    Verdict.PRUNE: "pruned",
    Verdict.INCONCLUSIVE: "inconclusive",
}


class Loop:
    """One seed under one policy."""

    def __init__(self, seed: int, policy: str, settings: Settings) -> None:
        self.seed, self.policy, self.settings = seed, policy, settings
        self.ids = random.Random(f"ids-{seed}-{policy}")
        self.task_number = 0
        self.champion = Structure()
        self.best_so_far = self.champion.mean_rate
        self.run = SeedRun(seed=seed, policy=policy, engine="model")
        self.decision_settings = DecisionSettings(
            min_traces_per_arm=min(settings.min_traces, settings.max_tasks),
            max_traces_per_arm=settings.max_tasks,
        )

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.ids.getrandbits(128), version=4))

    def serve(self, structure: Structure) -> tuple[Observation, int]:
        number = self.task_number
        self.task_number += 1
        result = outcome(self.seed, number, task_class(self.seed, number), structure)
        if structure.mean_rate < self.best_so_far - 1e-9:
            self.run.regret_tasks += 1
        tokens = result.input_tokens + result.output_tokens
        return Observation(result.success, tokens, result.latency_ms), tokens

    def decide(
        self, candidate: list[Observation], champion: list[Observation], exhausted: bool
    ) -> Decision:
        c, h = ArmSummary.of(candidate), ArmSummary.of(champion)
        if self.policy in COMPARISON_RULES:
            scores = [1.0 if o.success else -1.0 for o in candidate]
            return comparison_decision(
                self.policy, c, h, scores, self.decision_settings, key=self.trial_id,
                deadline_passed=exhausted,
            )  # fmt: skip
        return decide(c, h, self.decision_settings, deadline_passed=exhausted)

    def trial(self, generation: int, gene: str) -> TrialRecord:
        settings = self.settings
        base = self.champion
        candidate_structure = Structure(base.genes | {gene})
        self.trial_id = self.new_id()
        candidate: list[Observation] = []
        champion: list[Observation] = []
        routed = directives = tokens = 0
        state = "inconclusive"
        while directives < settings.directive_budget:
            directives += 1
            task_id = self.new_id()
            routable = routed < settings.max_tasks
            if routable and exposure_bucket(task_id, self.trial_id) < settings.share_basis_points:
                routed += 1
                observation, used = self.serve(candidate_structure)
                candidate.append(observation)
            else:
                observation, used = self.serve(base)
                champion.append(observation)
            tokens += used
            exhausted = len(candidate) >= settings.max_tasks or (
                routed >= settings.max_tasks and len(candidate) >= routed
            )
            verdict = self.decide(candidate, champion, exhausted).verdict
            if verdict in STATES:
                state = STATES[verdict]
                break
        record = TrialRecord(
            seed=self.seed,
            policy=self.policy,
            generation=generation,
            gene=gene,
            kind=trial_kind(candidate_structure, base),
            gain=candidate_structure.mean_rate - base.mean_rate,
            token_ratio=candidate_structure.token_factor / base.token_factor,
            should_promote=should_promote(candidate_structure, base),
            state=state,
            candidate_traces=len(candidate),
            champion_traces=len(champion),
            directives=directives,
            tokens=tokens,
        )
        if state == "promoted":
            self.champion = candidate_structure
            if self.watch_regressed(champion):
                self.champion = base
                record.state = "rolled_back"
        self.best_so_far = max(self.best_so_far, self.champion.mean_rate)
        return record

    def watch_regressed(self, before: list[Observation]) -> bool:
        after = [self.serve(self.champion)[0] for _ in range(self.settings.watch_tasks)]
        decision = decide(
            ArmSummary.of(after), ArmSummary.of(before), self.decision_settings,
            deadline_passed=True,
        )  # fmt: skip
        return significantly_worse(decision)

    def go(self) -> SeedRun:
        started = time.perf_counter()
        source = ScriptedSource(self.seed)
        run = self.run
        run.champion_rate.append(self.champion.mean_rate)
        for _ in range(self.settings.baseline):
            self.serve(self.champion)
        for generation in range(1, self.settings.generations + 1):
            gene = source.next(self.champion.genes)
            if gene is None:
                run.champion_rate.append(self.champion.mean_rate)
                continue
            record = self.trial(generation, gene)
            source.tried(gene, record.state)
            run.trials.append(record)
            run.champion_rate.append(self.champion.mean_rate)
            if run.generations_to_best is None and is_best(self.champion):
                run.generations_to_best = generation
        run.tasks = self.task_number
        run.seconds = time.perf_counter() - started
        return run


def run_model(seed: int, policy: str, settings: Settings) -> SeedRun:
    if settings.source != "scripted":
        # The generation plans on genomes, trial evaluations and traces the database holds;
        # this engine has structures only (docs/evolution.md, "--source generations").
        raise ValueError(
            "the model engine runs the scripted source only; generations run in the services engine"
        )
    return Loop(seed, policy, settings).go()

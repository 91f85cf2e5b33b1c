"""A trial's evidence, its decision after every trace, and what the decision does
(docs/rules/trials.md, "Decision rule").

The evidence is read from the task traces, never counted on the side, so an evaluation
after a restart (or twice) sees exactly what is stored:

* the **candidate arm**: traces tagged with the trial (``trial_id``) in its route role
  (control; shadow in shadow mode), since the trial started;
* the **champion arm**: the other traces of work done in the controller's subtree under
  the trial's base version, since the trial started, of the trial's task classes when it
  names some. In shadow mode the candidate's copy and the champion's run of the same task
  form a pair.

A safety breach is a candidate trace with a capability violation, or a pain signal about
one of the candidate's tasks or about the trial itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from ledger import kinds
from ledger.models import TaskTrace
from ledger.services import ledger_batch
from organization.models import LiveTrial
from organization.selectors import genome_version
from trials.domain.decision import (
    ArmSummary,
    Decision,
    DecisionSettings,
    Observation,
    Verdict,
    decide,
    decide_paired,
    reference_decision,
)
from trials.domain.decision.naive import COMPARISON_RULES, comparison_decision
from trials.events import trial_record
from trials.models import Trial, TrialMode
from trials.services.promotion import trial_conclude, trial_promote, trial_prune
from workers.models import AlgedonicSignalRecord

logger = logging.getLogger(__name__)

CANDIDATE_ROLE: dict[str, str] = {
    TrialMode.SHADOW.value: "shadow"
}  # every other mode's candidate arm: "control"
TASK_CLASS_KEY = "task_metadata.task_class"
# A trial may name a comparison policy (benchmarks only, bench/evolution.py); absent, the rule.
DECISION_RULE_KEY = "decision_rule"


@dataclass(frozen=True)
class ArmTrace:
    """What the evaluation reads of one trace: a few columns and two metadata keys, never the
    whole row (an arm is re-read after every trace, and decoding every trace's JSON columns
    was most of the cost)."""

    id: str
    task_id: str
    started_at: Any
    total_score: float
    succeeded: bool
    tokens: int
    latency_ms: int
    capability_violation: bool
    task_class: str | None


@dataclass
class Arms:
    candidate: list[ArmTrace] = field(default_factory=list)
    champion: list[ArmTrace] = field(default_factory=list)
    breached_task_ids: set[str] = field(default_factory=set)

    def observations(self, traces: list[ArmTrace]) -> list[Observation]:
        return [observation(trace, self.breached_task_ids) for trace in traces]

    def pairs(self) -> list[tuple[Observation, Observation]]:
        """Shadow mode: the candidate's copy and the champion's run of the same task."""
        champion = {trace.task_id: trace for trace in self.champion}
        return [
            (
                observation(trace, self.breached_task_ids),
                observation(champion[trace.task_id], set()),
            )
            for trace in self.candidate
            if trace.task_id in champion
        ]


def observation(trace: ArmTrace, breached_task_ids: set[str]) -> Observation:
    return Observation(
        success=trace.succeeded,
        tokens=trace.tokens,
        latency_ms=trace.latency_ms,
        safety_breach=trace.capability_violation or trace.task_id in breached_task_ids,
    )


_ARM_COLUMNS = (
    "id",
    "task_id",
    "started_at",
    "outcome_score",
    "delayed_adjustments",
    "reverted",
    "merged",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "violation",
    "task_class",
)


def arm_traces(traces: QuerySet[TaskTrace], limit: int | None = None) -> list[ArmTrace]:
    """The traces of a queryset as the evaluation reads them, oldest first (the first
    ``limit`` of them, when given)."""
    rows = (
        traces.annotate(
            violation=KT("metadata__capability_violation"),
            task_class=KT(f"metadata__{TASK_CLASS_KEY}"),
        )
        .order_by("started_at", "id")
        .values_list(*_ARM_COLUMNS)
    )
    arm = []
    for row in rows if limit is None else rows[:limit]:
        id_, task_id, started_at, score, adjustments, reverted, merged, tokens_in = row[:8]
        tokens_out, latency_ms, violation, task_class = row[8:]
        total = score + sum(float(item.get("delta_score", 0.0)) for item in adjustments)
        arm.append(
            ArmTrace(
                id=id_,
                task_id=task_id,
                started_at=started_at,
                total_score=total,
                succeeded=total > 0 and reverted is not True and merged is not False,
                tokens=tokens_in + tokens_out,
                latency_ms=latency_ms,
                capability_violation=bool(violation),
                task_class=task_class,
            )
        )
    return arm


def trial_arms(trial: Trial) -> Arms:
    """Both arms' traces, oldest first (see the module docstring)."""
    since = trial.started_at or trial.queued_at
    role = CANDIDATE_ROLE.get(trial.mode, "control")
    # Both arms are read through the subtree scope index (node, start): the trial routes only
    # inside its controller's subtree, so its traces are there, and the read costs the
    # trial's window, not the whole history of traces (the metadata keys have no index).
    candidate = arm_traces(
        TaskTrace.objects.filter(
            scopes__node_id=trial.controller_node_id,
            scopes__started_at__gte=since,
            metadata__trial_id=trial.id,
            metadata__trial_route_role=role,
        )
    )
    champion = [
        trace
        for trace in arm_traces(
            TaskTrace.objects.filter(
                scopes__node_id=trial.controller_node_id,
                scopes__started_at__gte=since,
                genome_id=trial.base_version_id,
            ).exclude(metadata__has_key="trial_id")
        )
        if not trial.allowed_task_classes or trace.task_class in trial.allowed_task_classes
    ]
    breached = _breached_task_ids(trial, candidate, since)
    return Arms(candidate=candidate, champion=champion, breached_task_ids=breached)


def _breached_task_ids(trial: Trial, candidate: list[ArmTrace], since: Any) -> set[str]:
    """The candidate's tasks that a pain signal attributes to the candidate: one naming the
    trial, or one about a node only the candidate genome has. (A streak of failures at a leaf
    both arms share is not the candidate's breach: those failures are already in its rate.)"""
    if not candidate:
        return set()
    base_nodes = set(genome_version(version_id=trial.base_version_id).nodes)
    candidate_nodes = set(genome_version(version_id=trial.candidate_version_id).nodes)
    own_nodes = candidate_nodes - base_nodes
    pains = AlgedonicSignalRecord.objects.filter(valence="Pain", created_at__gte=since).filter(
        Q(related_suggestion_id=trial.id) | Q(target_node_id__in=own_nodes)
    )
    candidate_tasks = {trace.task_id for trace in candidate}
    breached = {
        str(task_id)
        for task_id in pains.values_list("related_task_id", flat=True)
        if task_id in candidate_tasks
    }
    if len(breached) < pains.count():
        # A breach not tied to one of its tasks still counts once, on its latest trace.
        breached.add(candidate[-1].task_id)
    return breached


def decision_settings(trial: Trial) -> DecisionSettings:
    return DecisionSettings(
        alpha=trial.alpha,
        indifference_margin=trial.indifference_margin,
        min_traces_per_arm=trial.min_traces_per_arm,
        max_traces_per_arm=trial.max_traces_per_arm,
        token_margin=trial.token_margin,
        latency_margin=trial.latency_margin,
    )


def exhausted_because(trial: Trial, arms: Arms, live: LiveTrial | None) -> str | None:
    """Why the trial can get no more evidence, if it cannot: it is then concluded."""
    if trial.deadline is not None and timezone.now() >= trial.deadline:
        return f"deadline {trial.deadline.isoformat()} passed"
    if len(arms.candidate) >= trial.max_traces_per_arm:
        return f"the candidate reached its maximum of {trial.max_traces_per_arm} traces"
    if live is None:
        return None
    if (
        trial.max_tasks is not None
        and live.routed_tasks >= trial.max_tasks
        and len(arms.candidate) >= live.routed_tasks
    ):
        return f"all {trial.max_tasks} tasks the trial may route have their traces"
    if trial.max_token_budget is not None and live.consumed_tokens >= trial.max_token_budget:
        return f"the token budget of {trial.max_token_budget} is spent"
    return None


def evaluate_arms(trial: Trial, arms: Arms, *, exhausted: bool) -> Decision:
    settings = decision_settings(trial)
    rule = trial.metadata.get(DECISION_RULE_KEY)
    if rule in COMPARISON_RULES:  # two samples, whatever the mode
        return comparison_decision(
            rule,
            ArmSummary.of(arms.observations(arms.candidate)),
            ArmSummary.of(arms.observations(arms.champion)),
            [trace.total_score for trace in arms.candidate],
            settings,
            key=trial.id,
            deadline_passed=exhausted,
        )
    if trial.mode == TrialMode.SHADOW:  # both arms ran the same tasks: compare them paired
        return decide_paired(arms.pairs(), settings, deadline_passed=exhausted)
    return decide(
        ArmSummary.of(arms.observations(arms.candidate)),
        ArmSummary.of(arms.observations(arms.champion)),
        settings,
        deadline_passed=exhausted,
    )


def trial_evaluate(*, trial_id: str, actor: str = "system:trials") -> Trial:
    """Compare the trial's arm with the champion's, record the decision with its numbers,
    and act on it (promote, prune, inconclusive, continue).

    Idempotent: with no new trace and nothing exhausted, nothing is recorded. Only an
    active trial is evaluated; any other is returned as it is.
    """
    with ledger_batch():
        trial = Trial.objects.select_for_update().select_related("suggestion").get(pk=trial_id)
        if trial.state != Trial.State.ACTIVE:
            return trial
        live = LiveTrial.objects.filter(trial_id=trial.id).first()
        arms = trial_arms(trial)
        exhausted = exhausted_because(trial, arms, live)
        counts = (len(arms.candidate), len(arms.champion))
        if counts == (trial.candidate_traces, trial.champion_traces) and exhausted is None:
            return trial
        decision = evaluate_arms(trial, arms, exhausted=exhausted is not None)
        _record(trial, arms, decision, live, exhausted, actor)
        reason = decision.reason if exhausted is None else f"{decision.reason} ({exhausted})"
        if decision.verdict == Verdict.PROMOTE:
            trial_promote(trial=trial, actor=actor, reason=reason, evaluation=trial.evaluation)
        elif decision.verdict == Verdict.PRUNE:
            trial_prune(trial=trial, actor=actor, reason=reason)
        elif decision.verdict == Verdict.INCONCLUSIVE:
            trial_conclude(trial=trial, actor=actor, reason=reason)
    return trial


def _record(
    trial: Trial,
    arms: Arms,
    decision: Decision,
    live: LiveTrial | None,
    exhausted: str | None,
    actor: str,
) -> None:
    seen = set(trial.evaluation.get("candidate_trace_ids", []))
    new = [trace for trace in arms.candidate if trace.id not in seen]
    for trace in new:
        trial_record(
            trial,
            kinds.TRIAL_TRACE_RECORDED,
            {
                "trace_id": trace.id,
                "task_id": trace.task_id,
                "success": trace.succeeded,
                "tokens": trace.tokens,
                "candidate_traces": len(arms.candidate),
                "champion_traces": len(arms.champion),
            },
            actor=actor,
        )
    numbers: dict[str, Any] = decision.numbers
    trial.evaluation = {
        **decision.to_json(),
        "candidate_trace_ids": [trace.id for trace in arms.candidate],
        "champion_trace_count": len(arms.champion),
        "exhausted": exhausted,
        "evaluated_at": timezone.now().isoformat(),
    }
    trial.candidate_traces = len(arms.candidate)
    trial.champion_traces = len(arms.champion)
    trial.verdict = decision.verdict.value
    trial.reason = decision.reason
    if live is not None:
        trial.routed_tasks = live.routed_tasks
        trial.consumed_tokens = live.consumed_tokens
    trial.save(
        update_fields=[
            "evaluation",
            "candidate_traces",
            "champion_traces",
            "verdict",
            "reason",
            "routed_tasks",
            "consumed_tokens",
            "updated_at",
        ]
    )
    # The reference kernel's absolute rule, for comparison only: what it would have done.
    reference = reference_decision([trace.total_score for trace in arms.candidate])
    trial_record(
        trial,
        kinds.TRIAL_DECISION_RECORDED,
        {
            "verdict": decision.verdict.value,
            "reason": decision.reason,
            "rule": decision.rule,
            "numbers": numbers,
            "reference_rule": {"verdict": reference.verdict.value, **reference.numbers},
            "candidate_traces": len(arms.candidate),
            "champion_traces": len(arms.champion),
            "exhausted": exhausted,
        },
        actor=actor,
    )


def on_evidence_arrived(sender: str, *, trial_id: str, **kwargs: Any) -> None:
    """``workers.signals.trial_evidence_arrived``: evaluate once the hop has committed (so
    the trace it stored is visible), in the same process. A failure here is logged and
    retried by the periodic tick; it never undoes the hop."""
    transaction.on_commit(lambda: _evaluate_quietly(trial_id))


def _evaluate_quietly(trial_id: str) -> None:
    try:
        trial_evaluate(trial_id=trial_id)
    except Exception:  # the hop committed; the tick evaluates again
        logger.exception("evaluating trial %s failed; the periodic tick will retry", trial_id)

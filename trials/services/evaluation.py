"""A trial's decision after every trace, and what the decision does (docs/rules/trials.md,
"Decision rule"). The arms it decides on, and how they are read: ``trials.services.evidence``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from ledger import kinds
from ledger.compiled import READINGS, save_fields
from ledger.services import ledger_batch
from organization.models import LiveTrial
from trials.domain.decision import (
    ArmSummary,
    Decision,
    DecisionSettings,
    Verdict,
    decide,
    decide_paired,
    reference_decision,
)
from trials.domain.decision.naive import COMPARISON_RULES, comparison_decision
from trials.events import trial_record
from trials.models import Trial, TrialMode
from trials.services.evidence import (  # re-exported: the watch window reads arms too
    CANDIDATE_ROLE,
    TASK_CLASS_KEY,
    Arms,
    ArmTrace,
    arm_traces,
    observation,
    trial_arms,
    trial_arms_cached,
)
from trials.services.promotion import trial_conclude, trial_promote, trial_prune

__all__ = [
    "CANDIDATE_ROLE",
    "TASK_CLASS_KEY",
    "ArmTrace",
    "Arms",
    "arm_traces",
    "observation",
    "trial_arms",
    "trial_evaluate",
]

logger = logging.getLogger(__name__)

# A trial may name a comparison policy (benchmarks only, bench/evolution.py); absent, the rule.
DECISION_RULE_KEY = "decision_rule"


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
            arms.champion_summary(),
            [trace.total_score for trace in arms.candidate],
            settings,
            key=trial.id,
            deadline_passed=exhausted,
        )
    if trial.mode == TrialMode.SHADOW:  # both arms ran the same tasks: compare them paired
        return decide_paired(arms.pairs(), settings, deadline_passed=exhausted)
    return decide(
        ArmSummary.of(arms.observations(arms.candidate)),
        arms.champion_summary(),
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
        # Not select_related("suggestion"): only a promotion reads it (its patch), and decoding
        # it with every evaluation was a measurable share of the evaluation.
        # Both readings compiled once per trial (ledger/compiled.py): one is run after
        # every trace.
        trial: Trial | None = READINGS.first(
            ("trial for update", trial_id),
            lambda: Trial.objects.select_for_update().filter(pk=trial_id),
        )
        if trial is None:
            raise Trial.DoesNotExist(f"no trial {trial_id}")
        if trial.state != Trial.State.ACTIVE:
            return trial
        live: LiveTrial | None = READINGS.first(
            ("live trial", trial.id), lambda: LiveTrial.objects.filter(trial_id=trial.id)
        )
        totals = trial.champion_totals
        arms = trial_arms_cached(trial, save=False)  # what trial_arms reads, each trace once
        exhausted = exhausted_because(trial, arms, live)
        counts = (len(arms.candidate), arms.champion_count)
        if counts == (trial.candidate_traces, trial.champion_traces) and exhausted is None:
            if trial.champion_totals != totals:  # kept rows of a trial live before they were
                save_fields(trial, "champion_totals")
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
                "champion_traces": arms.champion_count,
            },
            actor=actor,
        )
    numbers: dict[str, Any] = decision.numbers
    trial.evaluation = {
        **decision.to_json(),
        "candidate_trace_ids": [trace.id for trace in arms.candidate],
        "champion_trace_count": arms.champion_count,
        "exhausted": exhausted,
        "evaluated_at": timezone.now().isoformat(),
    }
    trial.candidate_traces = len(arms.candidate)
    trial.champion_traces = arms.champion_count
    trial.verdict = decision.verdict.value
    trial.reason = decision.reason
    if live is not None:
        trial.routed_tasks = live.routed_tasks
        trial.consumed_tokens = live.consumed_tokens
    save_fields(
        trial,
        "evaluation",
        "candidate_traces",
        "champion_traces",
        "verdict",
        "reason",
        "routed_tasks",
        "consumed_tokens",
        "champion_totals",
        "updated_at",
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
            "champion_traces": arms.champion_count,
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

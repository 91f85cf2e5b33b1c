"""Reads of the trials app: lists of trials, the operator's inbox and a trial's evidence.

The *evidence bundle* is everything an operator is shown before deciding on a trial (its
hypothesis and evidence, the candidate's genome diff, the decision numbers, both arms over
time, the rule's recommendation); ``evidence_hash`` names it, so an approval records which
evidence its operator saw (``TrialApproval.evidence_hash``). The bundle holds JSON values
only and is built deterministically: the same rows always hash the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Q, QuerySet

from ledger.chain import canonical_json
from organization.selectors import VersionNotFound, genome_versions_diff
from trials.errors import TrialNotFound
from trials.models import Trial, TrialApproval

RECENT_LIMIT = 25

PENDING = Q(state=Trial.State.INCONCLUSIVE) | Q(
    state=Trial.State.ACTIVE, requires_approval=True, approved_at__isnull=True
)


def _trials() -> QuerySet[Trial]:
    return Trial.objects.select_related("suggestion")


def trial_list(
    *, state: str | None = None, mode: str | None = None, controller_node_id: str | None = None
) -> QuerySet[Trial]:
    """Trials, newest queued first, narrowed by state, mode and controller when given."""
    trials = _trials().order_by("-queued_at", "suggestion_id")
    if state is not None:
        trials = trials.filter(state=state)
    if mode is not None:
        trials = trials.filter(mode=mode)
    if controller_node_id is not None:
        trials = trials.filter(controller_node_id=controller_node_id)
    return trials


def trial_pending() -> QuerySet[Trial]:
    """Trials awaiting an operator (``Trial.awaiting_operator``), the longest waiting first."""
    return _trials().filter(PENDING).order_by("queued_at", "suggestion_id")


def trial_get(*, trial_id: str) -> Trial:
    """One trial with its suggestion; raises TrialNotFound."""
    trial = _trials().filter(suggestion_id=trial_id).first()
    if trial is None:
        raise TrialNotFound(trial_id)
    return trial


def trial_approvals(*, trial: Trial) -> list[TrialApproval]:
    """Operators' decisions on the trial, newest first."""
    return list(trial.approvals.order_by("-decided_at", "id"))


@dataclass(frozen=True)
class TrialInbox:
    """The /trials/ page: what waits for an operator, what runs, what happened lately."""

    pending: list[Trial]
    active: list[Trial]
    recent: list[Trial]


def trial_inbox(*, recent_limit: int = RECENT_LIMIT) -> TrialInbox:
    pending = list(trial_pending())
    active = list(
        _trials()
        .filter(state=Trial.State.ACTIVE)
        .exclude(PENDING)
        .order_by("-started_at", "suggestion_id")
    )
    recent = list(
        _trials()
        .exclude(PENDING)
        .exclude(state=Trial.State.ACTIVE)
        .order_by("-queued_at", "suggestion_id")[:recent_limit]
    )
    return TrialInbox(pending=pending, active=active, recent=recent)


# -- the evidence bundle --------------------------------------------------------------------


def evidence_hash(bundle: dict[str, Any]) -> str:
    """``sha256:<hex>`` of the bundle's canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(bundle).encode()).hexdigest()


def trial_evidence_bundle(*, trial: Trial) -> dict[str, Any]:
    """What an operator is shown before deciding on ``trial`` (see the module docstring)."""
    suggestion = trial.suggestion
    return {
        "trial": {
            "id": trial.id,
            "controller_node_id": trial.controller_node_id,
            "state": trial.state,
            "mode": trial.mode,
            "awaiting_operator": trial.awaiting_operator,
            "requires_approval": trial.requires_approval,
            "approved_at": _timestamp(trial.approved_at),
            "base_version_id": trial.base_version_id,
            "candidate_version_id": trial.candidate_version_id,
            "queued_at": _timestamp(trial.queued_at),
            "started_at": _timestamp(trial.started_at),
            "ended_at": _timestamp(trial.ended_at),
            "limits": {
                "traffic_share_basis_points": trial.traffic_share_basis_points,
                "max_tasks": trial.max_tasks,
                "max_token_budget": trial.max_token_budget,
                "max_files_touched": trial.max_files_touched,
                "allowed_task_classes": list(trial.allowed_task_classes),
                "deadline": _timestamp(trial.deadline),
            },
            "rule": {
                "alpha": trial.alpha,
                "indifference_margin": trial.indifference_margin,
                "min_traces_per_arm": trial.min_traces_per_arm,
                "max_traces_per_arm": trial.max_traces_per_arm,
                "token_margin": trial.token_margin,
                "latency_margin": trial.latency_margin,
            },
            "counters": {
                "routed_tasks": trial.routed_tasks,
                "consumed_tokens": trial.consumed_tokens,
                "candidate_traces": trial.candidate_traces,
                "champion_traces": trial.champion_traces,
            },
        },
        "suggestion": {
            "id": suggestion.id,
            "source": suggestion.source,
            "suggested_by_node_id": suggestion.suggested_by_node_id,
            "target_node_id": suggestion.target_node_id,
            "hypothesis": suggestion.hypothesis,
            "evidence": suggestion.evidence,
            "patch": suggestion.patch,
            "trial_mode": suggestion.trial_mode,
            "safety_limits": suggestion.safety_limits,
            "measurement_plan": suggestion.measurement_plan,
            "rollback_plan": suggestion.rollback_plan,
        },
        "genome_diff": _genome_diff(trial),
        "evaluation": trial.evaluation,
        "decision": decision_numbers(trial.evaluation),
        "series": trial_arm_series(trial=trial),
        "recommendation": {"verdict": trial.verdict, "reason": trial.reason},
    }


def _genome_diff(trial: Trial) -> dict[str, Any]:
    try:
        return genome_versions_diff(
            base_version_id=trial.base_version_id, other_version_id=trial.candidate_version_id
        )
    except VersionNotFound as missing:  # PROTECTed foreign keys: only a broken database
        return {"error": str(missing)}


def _timestamp(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


# -- both arms over time --------------------------------------------------------------------


def trial_arm_series(*, trial: Trial) -> dict[str, Any]:
    """Each arm's cumulative success rate, trace by trace, from the trial's start to its end:
    the very traces and successes the evaluator counts (``trial_arms`` of
    ``trials.services.evaluation``), so that the chart and the decision numbers agree.

    Each point is ``{"at", "n", "successes", "rate"}``; a trial that never started has none.
    """
    # Imported here: the services import this module (an approval hashes the bundle).
    from trials.services.evaluation import trial_arms

    series: dict[str, Any] = {
        "since": _timestamp(trial.started_at),
        "until": _timestamp(trial.ended_at),
        "candidate": [],
        "champion": [],
    }
    if trial.started_at is None:
        return series
    arms = trial_arms(trial)
    for name, traces in (("candidate", arms.candidate), ("champion", arms.champion)):
        successes = 0
        for n, trace in enumerate(traces, start=1):
            if trial.ended_at is not None and trace.started_at > trial.ended_at:
                break
            successes += 1 if trace.succeeded else 0
            series[name].append(
                {
                    "at": trace.started_at.isoformat(),
                    "n": n,
                    "successes": successes,
                    "rate": round(successes / n, 6),
                }
            )
    return series


# -- the evaluator's numbers, as the pages show them ------------------------------------------


def decision_numbers(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluator's latest numbers (``Trial.evaluation``, ``Decision.to_json()`` of
    ``trials.domain.decision`` plus bookkeeping) in the shape the pages draw: per arm n,
    successes, rate and Wilson interval; the difference with its interval; the guardrails;
    the verdict and its reason. Anything missing (no evaluation yet) is None or empty.
    """
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    numbers = _mapping(evaluation.get("numbers"))
    arms = _mapping(numbers.get("arms"))
    difference = _mapping(numbers.get("difference"))
    return {
        "candidate": _arm(_mapping(arms.get("candidate"))),
        "champion": _arm(_mapping(arms.get("champion"))),
        "difference": {
            "estimate": _number(difference.get("estimate")),
            "interval": _bounds(difference.get("lower"), difference.get("upper")),
        },
        "guardrails": [
            {
                "name": str(guardrail.get("name", "?")),
                "passed": guardrail.get("passed")
                if isinstance(guardrail.get("passed"), bool)
                else None,
                "detail": canonical_json(
                    {k: v for k, v in guardrail.items() if k not in ("name", "passed")}
                ),
            }
            for guardrail in numbers.get("guardrails") or []
            if isinstance(guardrail, dict)
        ],
        "verdict": evaluation.get("verdict"),
        "reason": evaluation.get("reason"),
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _bounds(low: Any, high: Any) -> list[float | None] | None:
    if low is None and high is None:
        return None
    return [_number(low), _number(high)]


def _arm(arm: dict[str, Any]) -> dict[str, Any]:
    wilson = arm.get("wilson")
    interval = _bounds(*wilson) if isinstance(wilson, list) and len(wilson) == 2 else None
    return {
        "n": _number(arm.get("n")),
        "successes": _number(arm.get("successes")),
        "rate": _number(arm.get("rate")),
        "interval": interval,
    }

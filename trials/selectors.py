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
from ledger.models import TaskTrace
from ledger.selectors import subtree_task_traces
from organization.selectors import VersionNotFound, genome_versions_diff
from trials.errors import TrialNotFound
from trials.models import Trial, TrialApproval

# How many of the controller's traces the arms' time series reads, newest first: far more
# than a trial's arms need (``max_traces_per_arm`` is 200 by default).
SERIES_TRACE_LIMIT = 2000
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


def is_candidate_trace(trace: TaskTrace, *, trial_id: str) -> bool:
    """Whether a trace is the candidate's: tagged with the trial's suggestion, or routed on
    the trial's control route (docs/rules/trials.md, "Routing modes")."""
    if trial_id in (trace.related_suggestion_ids or []):
        return True
    metadata = trace.metadata or {}
    return metadata.get("trial_id") == trial_id and metadata.get("trial_route_role") == "control"


def trial_arm_series(*, trial: Trial) -> dict[str, Any]:
    """Each arm's cumulative success rate, trace by trace, since the trial started (and up to
    its end): the candidate's traces and the champion's other traces in the controller's
    subtree. A trace succeeds when its ``outcome_score`` is above 0.

    Each point is ``{"at", "n", "successes", "rate"}``; a trial that never started has none.
    """
    series: dict[str, Any] = {
        "since": _timestamp(trial.started_at),
        "until": _timestamp(trial.ended_at),
        "candidate": [],
        "champion": [],
    }
    if trial.started_at is None:
        return series
    traces = subtree_task_traces(
        node_id=trial.controller_node_id, since=trial.started_at, limit=SERIES_TRACE_LIMIT
    )
    counts = {"candidate": [0, 0], "champion": [0, 0]}
    for trace in sorted(traces, key=lambda t: (t.started_at, t.id)):
        if trial.ended_at is not None and trace.started_at > trial.ended_at:
            continue
        arm = "candidate" if is_candidate_trace(trace, trial_id=trial.id) else "champion"
        count = counts[arm]
        count[0] += 1
        count[1] += 1 if trace.outcome_score > 0 else 0
        series[arm].append(
            {
                "at": trace.started_at.isoformat(),
                "n": count[0],
                "successes": count[1],
                "rate": round(count[1] / count[0], 6),
            }
        )
    return series


# -- the evaluator's numbers, as the pages show them ------------------------------------------


def decision_numbers(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluator's latest numbers (``Trial.evaluation``) in one shape for the pages.

    Read leniently: each arm under ``candidate`` / ``champion`` (or ``arms.<name>``) with
    ``n``, ``successes``, ``rate`` and a Wilson interval (``interval``/``wilson``/``ci`` as
    ``[low, high]`` or ``{low, high}``); ``difference`` as a number with
    ``difference_interval``, or an object with ``estimate`` and an interval;
    ``guardrails`` as a mapping of name → bool or object, or a list of objects with
    ``name``. Whatever is missing is None, and the raw JSON is shown beside it.
    """
    evaluation = evaluation if isinstance(evaluation, dict) else {}
    found = evaluation.get("arms")
    arms: dict[str, Any] = found if isinstance(found, dict) else {}
    return {
        "candidate": _arm(evaluation.get("candidate", arms.get("candidate"))),
        "champion": _arm(evaluation.get("champion", arms.get("champion"))),
        "difference": _difference(evaluation),
        "guardrails": _guardrails(evaluation.get("guardrails")),
        "verdict": evaluation.get("verdict") or evaluation.get("decision"),
        "reason": evaluation.get("reason"),
    }


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _bounds(value: Any) -> list[float | None] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return [_number(value[0]), _number(value[1])]
    if isinstance(value, dict):
        low = value.get("low", value.get("lower"))
        high = value.get("high", value.get("upper"))
        if low is not None or high is not None:
            return [_number(low), _number(high)]
    return None


def _interval_of(source: dict[str, Any]) -> list[float | None] | None:
    for key in ("interval", "wilson", "ci", "wilson_interval"):
        if key in source:
            return _bounds(source[key])
    return _bounds(source)


def _arm(arm: Any) -> dict[str, Any]:
    if not isinstance(arm, dict):
        return {"n": None, "successes": None, "rate": None, "interval": None}
    return {
        "n": _number(arm.get("n", arm.get("traces"))),
        "successes": _number(arm.get("successes")),
        "rate": _number(arm.get("rate")),
        "interval": _interval_of(arm),
    }


def _difference(evaluation: dict[str, Any]) -> dict[str, Any]:
    difference = evaluation.get("difference")
    if isinstance(difference, dict):
        return {
            "estimate": _number(difference.get("estimate", difference.get("value"))),
            "interval": _interval_of(difference),
        }
    return {
        "estimate": _number(difference),
        "interval": _bounds(evaluation.get("difference_interval")),
    }


def _guardrails(guardrails: Any) -> list[dict[str, Any]]:
    if isinstance(guardrails, dict):
        items = [
            {"name": name, **(value if isinstance(value, dict) else {"passed": value})}
            for name, value in sorted(guardrails.items())
        ]
    elif isinstance(guardrails, list):
        items = [item for item in guardrails if isinstance(item, dict)]
    else:
        return []
    shown = []
    for item in items:
        passed = item.get("passed", item.get("ok"))
        detail = {k: v for k, v in item.items() if k not in ("name", "passed", "ok")}
        shown.append(
            {
                "name": str(item.get("name", "?")),
                "passed": passed if isinstance(passed, bool) else None,
                "detail": canonical_json(detail) if detail else "",
            }
        )
    return shown

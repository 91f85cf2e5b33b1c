"""Choosing which queued candidate a controller tries next, and the archive of every choice
(docs/rules/trials.md, "Activation", "Replay route_counterfactual_v2", "Objectives and Pareto
frontier", "Selection score").

The pure rules are in ``trials.domain.selection``; here they get their inputs from the
database: the controller's queued trials, its ended trials (the history), the traces of its
subtree (the replay) and its environment pressure. Every evaluated candidate gets an
``ArchiveRecord``; when its trial ends (``trial_end``), the record learns the real outcome and
realised score, which later selections read as history.

Call inside the activation's transaction, with the queued rows locked: the archive records
and the trials' metadata are written here and commit (or roll back) with the activation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from ledger.chain import new_id
from ledger.fitness import trace_score
from ledger.fitness_queries import trace_facts
from ledger.models import TaskTrace
from ledger.selectors import subtree_task_traces
from organization.genome import parse_patch
from organization.selectors import genome_version
from trials.domain.selection import (
    POLICY,
    Candidate,
    CandidateEvaluation,
    CandidateLimits,
    CompletedTrial,
    History,
    Pressure,
    ReplayInput,
    ReplayTrace,
    Selection,
    choose,
    evaluate_candidate,
    replay_candidate,
)
from trials.models import ArchiveRecord, Trial, TrialMode
from workers.domain.bargaining import ENVIRONMENT_EVENT_KINDS, environment_pressure_details
from workers.services.pressure import recent_events

QUEUED_LIMIT = 50
HISTORY_LIMIT = 200
REPLAY_TRACE_LIMIT = 200
# An operator named the trial: it is activated whatever its place, and the archive says so.
OPERATOR_POLICY = "operator_named_candidate_v1"


@dataclass(frozen=True)
class Chosen:
    """The picked trial, the selection it won, and what ``trial_started`` reports."""

    trial: Trial
    selection: Selection
    activation_id: str
    policy: str
    environment_pressure: dict[str, Any]

    @property
    def evaluation(self) -> CandidateEvaluation:
        assert self.selection.picked is not None
        return self.selection.picked

    def started_payload(self) -> dict[str, Any]:
        evaluation = self.evaluation
        return {
            "source": "queued_candidate",
            "activation_id": self.activation_id,
            "selection_policy": self.policy,
            "selection_score": round(evaluation.score, 3),
            "selection_reasons": list(evaluation.reasons),
            "pareto_frontier_size": self.selection.frontier_size,
            "evaluated_candidates": len(self.selection.evaluations),
            "candidate_objectives": evaluation.objectives.as_json(),
            "environment_pressure": self.environment_pressure,
            "historical_replay": _replay_headline(evaluation),
        }


def candidate_select(
    *, controller_node_id: str, champion_version_id: str, named_trial_id: str | None = None
) -> Chosen | None:
    """Evaluate the controller's queued candidates built on the champion (the oldest 50,
    and the named one), archive every evaluation under one activation id, stamp the pick's
    metadata, and return it; None when no candidate is queued there.

    The pick is the best-scored member of the Pareto frontier (ties: oldest first), or
    ``named_trial_id`` when an operator names one. Stale candidates are the caller's to
    reject first; any left here are skipped.
    """
    trials = _queued(controller_node_id, champion_version_id, named_trial_id)
    if not trials:
        return None
    champion = genome_version(version_id=champion_version_id)
    history = controller_history(controller_node_id=controller_node_id)
    traces = replay_traces(controller_node_id=controller_node_id)
    details = environment_pressure_details(
        recent_events(node_id=controller_node_id, event_kinds=ENVIRONMENT_EVENT_KINDS)
    )
    pressure = Pressure(
        risk=details.pressure.risk,
        opportunity=details.pressure.opportunity,
        feedback=details.pressure.feedback,
    )
    evaluations = []
    for trial in trials:
        candidate = candidate_of(trial)
        replay = replay_candidate(
            ReplayInput(
                trial_id=trial.id,
                controller_id=controller_node_id,
                base_genome_id=champion_version_id,
                champion=champion,
                candidate=genome_version(version_id=trial.candidate_version_id),
                patch=candidate.patch,
                mode=candidate.mode,
                limits=candidate.limits,
                approved=trial.approved_at is not None,
            ),
            traces,
        )
        evaluations.append(
            evaluate_candidate(candidate, history=history, replay=replay, pressure=pressure)
        )
    selection = choose(evaluations, named_trial_id=named_trial_id)
    if selection.picked is None:
        return None
    chosen = Chosen(
        trial=next(t for t in trials if t.id == selection.picked.candidate.trial_id),
        selection=selection,
        activation_id=new_id(),
        policy=POLICY if named_trial_id is None else OPERATOR_POLICY,
        environment_pressure=details.as_json(),
    )
    _archive(chosen, trials)
    return chosen


def _queued(controller: str, champion_id: str, named_trial_id: str | None) -> list[Trial]:
    rows = (
        Trial.objects.select_for_update()
        .select_related("suggestion")
        .filter(
            state=Trial.State.QUEUED, controller_node_id=controller, base_version_id=champion_id
        )
        .order_by("queued_at", "pk")
    )
    trials = list(rows[:QUEUED_LIMIT])
    if named_trial_id is not None and all(trial.id != named_trial_id for trial in trials):
        trials.extend(rows.filter(pk=named_trial_id))
    return trials


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0


def candidate_of(trial: Trial) -> Candidate:
    """The trial as selection sees it. ``selection_priority`` / ``selection_penalty``: the
    trial's metadata, else its suggestion's."""
    suggestion = trial.suggestion
    metadata = {**suggestion.metadata, **trial.metadata}
    return Candidate(
        trial_id=trial.id,
        source=suggestion.source,
        mode=trial.mode,
        evidence_count=len(suggestion.evidence),
        limits=CandidateLimits(
            requires_approval=trial.requires_approval,
            max_tasks=trial.max_tasks,
            max_token_budget=trial.max_token_budget,
            max_files_touched=trial.max_files_touched,
            traffic_share_basis_points=trial.traffic_share_basis_points,
            allowed_task_classes=tuple(trial.allowed_task_classes),
        ),
        patch=parse_patch(suggestion.patch),
        patch_kind=str(suggestion.patch.get("kind", "")),
        selection_priority=_number(metadata.get("selection_priority")),
        selection_penalty=_number(metadata.get("selection_penalty")),
    )


# -- history and replay inputs ---------------------------------------------------------------


def controller_history(*, controller_node_id: str) -> History:
    """The controller's last 200 ended trials with their realised scores: the archive's (what
    ``trial_end`` wrote), else the mean score of the candidate traces its last evaluation
    counted."""
    ended = list(
        Trial.objects.select_related("suggestion")
        .filter(controller_node_id=controller_node_id, state__in=Trial.ENDED)
        .order_by("-ended_at", "pk")[:HISTORY_LIMIT]
    )
    archived = dict(
        ArchiveRecord.objects.filter(trial__in=ended, realised_score__isnull=False).values_list(
            "trial_id", "realised_score"
        )
    )
    missing = [trial for trial in ended if trial.id not in archived]
    from_traces = _scores_from_evaluations(missing)
    return History(
        trials=tuple(
            CompletedTrial(
                trial_id=trial.id,
                source=trial.suggestion.source,
                mode=trial.mode,
                patch_kind=str(trial.suggestion.patch.get("kind", "")),
                outcome=trial.state,
                realised_score=archived.get(trial.id, from_traces.get(trial.id)),
            )
            for trial in ended
        )
    )


def _scores_from_evaluations(trials: list[Trial]) -> dict[str, float]:
    ids = {trial.id: list(trial.evaluation.get("candidate_trace_ids", [])) for trial in trials}
    wanted = [trace_id for trace_ids in ids.values() for trace_id in trace_ids]
    if not wanted:
        return {}
    traces = {trace.id: trace for trace in TaskTrace.objects.filter(pk__in=wanted)}
    means = {}
    for trial_id, trace_ids in ids.items():
        scores = [_score(traces[trace_id]) for trace_id in trace_ids if trace_id in traces]
        if scores:
            means[trial_id] = sum(scores) / len(scores)
    return means


def _score(trace: TaskTrace) -> float:
    return trace_score(trace_facts(trace))


def replay_traces(*, controller_node_id: str) -> list[ReplayTrace]:
    """The subtree's last 200 traces, oldest first (the order the limits are spent in)."""
    rows = subtree_task_traces(node_id=controller_node_id, limit=REPLAY_TRACE_LIMIT)
    return [
        ReplayTrace(
            id=trace.id,
            task_id=trace.task_id,
            genome_id=trace.genome_id,
            facts=trace_facts(trace),
            files_touched=tuple(str(path) for path in trace.files_touched),
            tests_run=tuple(str(test) for test in trace.tests_run),
        )
        for trace in reversed(rows)
    ]


# -- the archive -----------------------------------------------------------------------------


def _replay_headline(evaluation: CandidateEvaluation) -> dict[str, Any]:
    """The replay summary without its per-trace evaluations (those stay in the archive)."""
    summary = evaluation.replay.as_json()
    summary.pop("evaluations")
    return summary


def _archive(chosen: Chosen, trials: Iterable[Trial]) -> None:
    selection = chosen.selection
    by_id = {trial.id: trial for trial in trials}
    records = []
    for evaluation, status in zip(selection.evaluations, selection.statuses, strict=True):
        candidate = evaluation.candidate
        trial = by_id[candidate.trial_id]
        records.append(
            ArchiveRecord(
                trial=trial,
                controller_node_id=trial.controller_node_id,
                activation_id=chosen.activation_id,
                status=status.value,
                policy=chosen.policy,
                selection_score=evaluation.score,
                frontier_size=selection.frontier_size,
                objectives=evaluation.objectives.as_json(),
                reasons=list(evaluation.reasons),
                replay=evaluation.replay.as_json(),
                metadata={
                    "trial_mode": candidate.mode,
                    "suggestion_source": candidate.source,
                    "patch_kind": candidate.patch_kind,
                    "selection_reasons": "|".join(evaluation.reasons),
                    "environment_pressure": chosen.environment_pressure,
                    "picked_trial_id": chosen.trial.id,
                },
            )
        )
        # The replay summary lives on the candidate, where its trial's page can show it.
        trial.metadata = {**trial.metadata, "historical_replay": _replay_headline(evaluation)}
        if trial.id == chosen.trial.id:
            trial.metadata.update(_selection_metadata(chosen))
        trial.save(update_fields=["metadata", "updated_at"])
    ArchiveRecord.objects.bulk_create(records)


def _selection_metadata(chosen: Chosen) -> dict[str, Any]:
    evaluation = chosen.evaluation
    return {
        "selection_policy": chosen.policy,
        "selection_activation_id": chosen.activation_id,
        "selection_score": round(evaluation.score, 3),
        "selection_reasons": list(evaluation.reasons),
        "pareto_frontier_size": chosen.selection.frontier_size,
        "candidate_objectives": evaluation.objectives.as_text(),
        "environment_pressure": chosen.environment_pressure,
    }


def archive_record_outcome(*, trial: Trial) -> int:
    """What really happened, on the trial's archive records: its state, the mean per-trace
    score of its candidate arm (None without a trace) and the arm's size. Returns the number
    of records updated; called by ``trial_end`` for every ending."""
    role = "shadow" if trial.mode == TrialMode.SHADOW else "control"
    since = trial.started_at or trial.queued_at
    traces = TaskTrace.objects.filter(  # through the scope index, as the evaluation reads
        scopes__node_id=trial.controller_node_id,
        scopes__started_at__gte=since,
        metadata__trial_id=trial.id,
        metadata__trial_route_role=role,
    )
    scores = [_score(trace) for trace in traces]
    return ArchiveRecord.objects.filter(trial=trial).update(
        outcome=trial.state,
        realised_score=sum(scores) / len(scores) if scores else None,
        realised_traces=len(scores),
        updated_at=timezone.now(),
    )

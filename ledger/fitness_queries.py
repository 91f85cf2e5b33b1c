"""Fitness of a node from its recorded traces: the database side of ``ledger.fitness``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ledger.fitness import (
    AttributedFitnessSummary,
    FitnessSummary,
    TraceFacts,
    attributed_fitness,
    direct_fitness,
)
from ledger.models import TaskTrace


def trace_facts(trace: TaskTrace) -> TraceFacts:
    return TraceFacts(
        assigned_node_id=trace.assigned_node_id,
        responsible_ancestor_ids=tuple(trace.responsible_ancestor_ids),
        outcome_score=trace.outcome_score,
        delayed_adjustment_deltas=tuple(
            float(adjustment.get("delta_score", 0.0)) for adjustment in trace.delayed_adjustments
        ),
        input_tokens=trace.input_tokens,
        output_tokens=trace.output_tokens,
        tool_calls=trace.tool_calls,
        latency_ms=trace.latency_ms,
        files_touched_count=len(trace.files_touched),
        lines_added=trace.lines_added,
        lines_deleted=trace.lines_deleted,
        tests_run_count=len(trace.tests_run),
        tests_passed=trace.tests_passed,
        review_passed=trace.review_passed,
        merged=trace.merged,
        reverted=trace.reverted,
        post_merge_regression=trace.post_merge_regression,
        human_override=trace.human_override,
        metadata={str(k): str(v) for k, v in trace.metadata.items()},
    )


@dataclass(frozen=True)
class NodeFitness:
    node_id: str
    since: datetime | None
    until: datetime | None
    direct: FitnessSummary
    attributed: AttributedFitnessSummary


def node_fitness(
    *, node_id: str, since: datetime | None = None, until: datetime | None = None
) -> NodeFitness:
    """Direct and attributed fitness (docs/rules/fitness.md) of ``node_id`` in [since, until).

    Direct counts the node's own traces; attributed adds its descendants' traces
    with the ancestor decay. Both read only traces of the node's subtree, found
    through the indexed trace scopes.
    """
    conditions: dict[str, object] = {"scopes__node_id": node_id}
    if since is not None:
        conditions["scopes__started_at__gte"] = since
    if until is not None:
        conditions["scopes__started_at__lt"] = until
    facts = [trace_facts(trace) for trace in TaskTrace.objects.filter(**conditions)]
    own = [f for f in facts if f.assigned_node_id == node_id]
    direct = direct_fitness(own).get(node_id, FitnessSummary(node_id=node_id))
    return NodeFitness(node_id, since, until, direct, attributed_fitness(node_id, facts))


@dataclass(frozen=True)
class FitnessPoint:
    """Fitness of a node over one window of a series: [since, until)."""

    since: datetime
    until: datetime
    traces: int  # of the subtree in the window
    direct: float  # direct fitness's final score, over the node's own traces
    attributed: float  # attributed fitness's final score, over the subtree's


SERIES_WINDOWS = 12
SERIES_MAX_TRACES = 600


def node_fitness_series(
    *, node_id: str, windows: int = SERIES_WINDOWS, max_traces: int = SERIES_MAX_TRACES
) -> list[FitnessPoint]:
    """Direct and attributed fitness of ``node_id`` over time, for the node page's chart.

    The subtree's latest ``max_traces`` traces (by start), split into ``windows`` equal
    spans of time from the first to the last of them; windows without a trace are left out.
    Reads one query, whatever the subtree's size; the scores come from ``ledger.fitness``.
    """
    rows = list(
        TaskTrace.objects.filter(scopes__node_id=node_id)
        .order_by("-scopes__started_at")
        .distinct()[:max_traces]
    )
    if not rows:
        return []
    rows.sort(key=lambda trace: trace.started_at)
    first, last = rows[0].started_at, rows[-1].started_at
    span = (last - first) / windows if last > first else None
    grouped: dict[int, list[TaskTrace]] = {}
    for trace in rows:
        index = min(int((trace.started_at - first) / span), windows - 1) if span else 0
        grouped.setdefault(index, []).append(trace)
    points = []
    for index, traces in sorted(grouped.items()):
        since = first + span * index if span else first
        until = first + span * (index + 1) if span else last
        facts = [trace_facts(trace) for trace in traces]
        own = [
            fact
            for fact, trace in zip(facts, traces, strict=True)
            if trace.assigned_node_id == node_id
        ]
        direct = direct_fitness(own).get(node_id, FitnessSummary(node_id=node_id))
        attributed = attributed_fitness(node_id, facts)
        points.append(
            FitnessPoint(
                since=since,
                until=until,
                traces=len(traces),
                direct=round(direct.final_score, 4),
                attributed=round(attributed.final_score, 4),
            )
        )
    return points

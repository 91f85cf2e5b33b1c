"""Fitness of traces and of the nodes that did (or managed) them (docs/rules/fitness.md). Pure.

* :func:`trace_score` — one trace's score: its outcome and delayed adjustments, merge /
  revert / regression / override outcomes, and costs (tokens, latency, line churn and
  coordination overhead).
* :func:`direct_fitness` — per assigned node, minus an organisational complexity penalty.
* :func:`attributed_fitness` — direct credit or blame for a node's own traces plus decayed credit
  for work done in its subtree: the immediate parent of the assigned node gets
  ``ancestor_initial_weight``, each further ancestor ``ancestor_decay`` times less.

Trial decisions use only the summed direct score (:func:`summed_direct_score`, no complexity
penalty) so that subtree credit is never counted twice; attributed summaries exist for audit.

The Django layer builds a :class:`TraceFacts` from a ``TaskTrace`` row; nothing here imports
Django. Differences from the reference, each deliberate:

* A metadata number that is not finite (``"inf"``, ``"NaN"``) counts as absent. The reference
  let ``inf`` through (a score of minus infinity) and turned ``NaN`` into zero coordination units
  for the whole trace.
* Numbers in metadata are read as the reference's parser reads them: no surrounding whitespace
  and no ``_`` digit separators (Python's ``float`` would accept both).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

# Lookups of a trace metadata key fall back to the copy the worker stamps from the task.
TASK_METADATA_PREFIX = "task_metadata."

# Coordination units by the VSM channel a task arrived (or left) on (docs/rules/fitness.md).
CHANNEL_COORDINATION_UNITS: Mapping[str, float] = {
    "ResourceBargaining": 0.0,
    "OperationToEnvironment": 0.0,
    "Command": 1.0,
    "ManagementToOperation": 1.0,
    "System2Coordination": 1.5,
    "OperationToOperation": 1.5,
    "Audit": 1.5,
    "ThreeFourHomeostat": 1.0,
    "FutureProbeToEnvironment": 0.5,
    "EnvironmentToEnvironment": 0.5,
    "Algedonic": 2.0,
}
OUTBOUND_CHANNEL_SHARE = 0.5
_U32_MAX = 2**32 - 1
_UNSIGNED = re.compile(r"\+?[0-9]+")


@dataclass(frozen=True, kw_only=True)
class FitnessWeights:
    """Score and attribution weights, defaults as in docs/rules/fitness.md, "Weights"."""

    accepted_merge_value: float = 10.0
    failed_task_penalty: float = 5.0
    reverted_penalty: float = 30.0
    regression_penalty: float = 25.0
    human_override_penalty: float = 20.0
    token_cost_weight: float = 0.00001
    latency_ms_weight: float = 0.000001
    line_delta_weight: float = 0.001
    coordination_message_weight: float = 0.05
    org_complexity_weight: float = 0.25
    # Attribution (docs/rules/fitness.md): the assigned node's and the ancestors' shares.
    direct_weight: float = 1.0
    ancestor_initial_weight: float = 1.0
    ancestor_decay: float = 0.5

    def ancestor_weight(self, depth: int) -> float:
        """Share of an ancestor ``depth`` steps above the immediate parent (0 = the parent)."""
        return self.ancestor_initial_weight * self.ancestor_decay**depth


DEFAULT_WEIGHTS = FitnessWeights()


@dataclass(frozen=True, kw_only=True)
class TraceFacts:
    """The fields of one TaskTrace (docs/rules/leaf.md, "Trace") fitness reads, as plain values.

    ``tool_calls``, ``files_touched_count``, ``tests_run_count``, ``tests_passed`` and
    ``review_passed`` are carried for summaries and future weights; the score ignores them.
    Tri-state outcomes are ``None`` when unknown, which scores neither credit nor penalty.
    """

    assigned_node_id: str
    responsible_ancestor_ids: tuple[str, ...] = ()  # immediate parent first, root last
    outcome_score: float = 0.0
    delayed_adjustment_deltas: tuple[float, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    latency_ms: int = 0
    files_touched_count: int = 0
    lines_added: int = 0
    lines_deleted: int = 0
    tests_run_count: int = 0
    tests_passed: bool | None = None
    review_passed: bool | None = None
    merged: bool | None = None
    reverted: bool | None = None
    post_merge_regression: bool | None = None
    human_override: bool | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def total_score(self) -> float:
        return self.outcome_score + sum(self.delayed_adjustment_deltas)

    @property
    def token_total(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(kw_only=True)
class FitnessSummary:
    """Direct fitness of one node: its own traces (docs/rules/fitness.md, "Direct fitness")."""

    node_id: str
    task_count: int = 0
    merged_count: int = 0
    reverted_count: int = 0
    regression_count: int = 0
    human_override_count: int = 0
    tokens: int = 0
    latency_ms: int = 0
    raw_score: float = 0.0
    complexity_penalty: float = 0.0
    final_score: float = 0.0


@dataclass(kw_only=True)
class AttributedFitnessSummary:
    """Own traces plus decayed subtree credit (docs/rules/fitness.md, "Attributed fitness")."""

    node_id: str
    direct_task_count: int = 0
    descendant_task_count: int = 0
    subtree_task_count: int = 0
    direct_tokens: int = 0
    subtree_tokens: int = 0
    direct_latency_ms: int = 0
    subtree_latency_ms: int = 0
    attribution_weight_total: float = 0.0
    direct_score: float = 0.0
    descendant_score: float = 0.0
    raw_score: float = 0.0
    complexity_penalty: float = 0.0
    final_score: float = 0.0


# -- per-trace score (docs/rules/fitness.md, "Per-trace score") -----------------------------------


def trace_score(facts: TraceFacts, weights: FitnessWeights = DEFAULT_WEIGHTS) -> float:
    """Outcome plus delayed adjustments, plus merge credit, minus penalties and costs."""
    score = facts.total_score
    if facts.merged is True:
        score += weights.accepted_merge_value
    elif facts.merged is False:
        score -= weights.failed_task_penalty
    if facts.reverted is True:
        score -= weights.reverted_penalty
    if facts.post_merge_regression is True:
        score -= weights.regression_penalty
    if facts.human_override is True:
        score -= weights.human_override_penalty
    score -= facts.token_total * weights.token_cost_weight
    score -= facts.latency_ms * weights.latency_ms_weight
    score -= (abs(facts.lines_added) + abs(facts.lines_deleted)) * weights.line_delta_weight
    score -= coordination_units(facts.metadata) * weights.coordination_message_weight
    return score


def coordination_units(metadata: Mapping[str, str]) -> float:
    """How much System 2 / management traffic a task needed, read from trace metadata (≥ 0)."""
    units = _number(_lookup(metadata, "coordination_message_count")) or 0.0

    source_channel = _lookup(metadata, "vsm_source_channel")
    if source_channel is None:
        source_channel = _lookup(metadata, "source_channel")
    if source_channel is not None:
        units += CHANNEL_COORDINATION_UNITS.get(source_channel, 0.0)
    outbound_channel = _lookup(metadata, "vsm_outbound_channel")
    if outbound_channel is not None:
        units += CHANNEL_COORDINATION_UNITS.get(outbound_channel, 0.0) * OUTBOUND_CHANNEL_SHARE

    dependencies = _lookup(metadata, "dependency_task_ids") or ""
    units += sum(1 for part in re.split(r"[,|]", dependencies) if part.strip())

    if _lookup(metadata, "handoff_kind") is not None:
        units += 1.0
    if _lookup(metadata, "management_kind") is not None:
        units += 1.0
    if _revision_depth(_lookup(metadata, "decomposition_revision_depth")) > 0:
        units += 1.0
    role = _lookup(metadata, "decomposition_role")
    if role is not None and role != "implementation":
        units += 0.5
    if _is_truthy(_lookup(metadata, "trial_shadow")):
        units += 1.0
    return max(units, 0.0)


def _lookup(metadata: Mapping[str, str], key: str) -> str | None:
    value = metadata.get(key)
    return metadata.get(TASK_METADATA_PREFIX + key) if value is None else value


def _number(value: str | None) -> float | None:
    if value is None or value != value.strip() or "_" in value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _revision_depth(value: str | None) -> int:
    """The depth as an unsigned 32-bit integer, or 0 when absent or unreadable."""
    if value is None or not _UNSIGNED.fullmatch(value):
        return 0
    depth = int(value)
    return depth if depth <= _U32_MAX else 0


def _is_truthy(value: str | None) -> bool:
    """*Truthy* (docs/rules/README.md, "Conventions"): ``"true"``, ``"1"``, any-case ``"yes"``."""
    if value is None:
        return False
    return value in ("true", "1") or (value.isascii() and value.lower() == "yes")


# -- direct fitness (docs/rules/fitness.md, "Direct fitness") -------------------------------------


def direct_fitness(
    facts_list: Iterable[TraceFacts],
    weights: FitnessWeights = DEFAULT_WEIGHTS,
    *,
    complexity_by_node: Mapping[str, float] | None = None,
) -> dict[str, FitnessSummary]:
    """Direct fitness of every node that has traces, keyed (and ordered) by node id."""
    complexity_by_node = complexity_by_node or {}
    summaries: dict[str, FitnessSummary] = {}
    for facts in facts_list:
        node_id = facts.assigned_node_id
        summary = summaries.setdefault(node_id, FitnessSummary(node_id=node_id))
        summary.task_count += 1
        summary.merged_count += facts.merged is True
        summary.reverted_count += facts.reverted is True
        summary.regression_count += facts.post_merge_regression is True
        summary.human_override_count += facts.human_override is True
        summary.tokens += facts.token_total
        summary.latency_ms += facts.latency_ms
        summary.raw_score += trace_score(facts, weights)
    for node_id, summary in summaries.items():
        summary.complexity_penalty = (
            complexity_by_node.get(node_id, 0.0) * weights.org_complexity_weight
        )
        summary.final_score = summary.raw_score - summary.complexity_penalty
    return dict(sorted(summaries.items()))


def summed_direct_score(
    facts_list: Iterable[TraceFacts], weights: FitnessWeights = DEFAULT_WEIGHTS
) -> float:
    """Σ trace scores with no complexity penalty and no subtree credit: what trials decide on."""
    total = 0.0
    for facts in facts_list:
        total += trace_score(facts, weights)
    return total


# -- attributed fitness (docs/rules/fitness.md, "Attributed fitness") -----------------------------


def ancestor_credits(facts: TraceFacts, weights: FitnessWeights) -> Iterator[tuple[str, float]]:
    """(ancestor id, weight) pairs a trace credits, in ancestor order.

    The depth of an ancestor is its position in ``responsible_ancestor_ids``; an entry equal to
    the assigned node, or repeating an earlier ancestor, is skipped but still uses up its
    position, and an ancestor whose weight is zero gets no credit at all.
    """
    seen: set[str] = set()
    for depth, ancestor_id in enumerate(facts.responsible_ancestor_ids):
        if ancestor_id == facts.assigned_node_id or ancestor_id in seen:
            continue
        seen.add(ancestor_id)
        weight = weights.ancestor_weight(depth)
        if weight != 0:
            yield ancestor_id, weight


def attributed_fitness_by_node(
    facts_list: Iterable[TraceFacts],
    weights: FitnessWeights = DEFAULT_WEIGHTS,
    *,
    complexity_by_node: Mapping[str, float] | None = None,
) -> dict[str, AttributedFitnessSummary]:
    """Attributed fitness of every node credited by some trace, keyed (and ordered) by id."""
    summaries: dict[str, AttributedFitnessSummary] = {}

    def summary_of(node_id: str) -> AttributedFitnessSummary:
        return summaries.setdefault(node_id, AttributedFitnessSummary(node_id=node_id))

    for facts in facts_list:
        score = trace_score(facts, weights)
        _credit_direct(summary_of(facts.assigned_node_id), facts, score, weights)
        for ancestor_id, weight in ancestor_credits(facts, weights):
            _credit_descendant(summary_of(ancestor_id), facts, score, weight)
    complexity_by_node = complexity_by_node or {}
    for node_id, summary in summaries.items():
        _finish(summary, complexity_by_node.get(node_id, 0.0), weights)
    return dict(sorted(summaries.items()))


def attributed_fitness(
    node_id: str,
    facts_list: Iterable[TraceFacts],
    weights: FitnessWeights = DEFAULT_WEIGHTS,
    *,
    complexity: float = 0.0,
) -> AttributedFitnessSummary:
    """Attributed fitness of one node; all zero (but the penalty) when no trace credits it.

    Equal to ``attributed_fitness_by_node(...)[node_id]`` for a credited node: traces of other
    subtrees simply contribute nothing.
    """
    summary = AttributedFitnessSummary(node_id=node_id)
    for facts in facts_list:
        if facts.assigned_node_id == node_id:
            _credit_direct(summary, facts, trace_score(facts, weights), weights)
            continue
        for ancestor_id, weight in ancestor_credits(facts, weights):
            if ancestor_id == node_id:
                _credit_descendant(summary, facts, trace_score(facts, weights), weight)
                break
    _finish(summary, complexity, weights)
    return summary


def _credit_direct(
    summary: AttributedFitnessSummary, facts: TraceFacts, score: float, weights: FitnessWeights
) -> None:
    summary.direct_task_count += 1
    summary.subtree_task_count += 1
    summary.direct_tokens += facts.token_total
    summary.subtree_tokens += facts.token_total
    summary.direct_latency_ms += facts.latency_ms
    summary.subtree_latency_ms += facts.latency_ms
    summary.attribution_weight_total += weights.direct_weight
    summary.direct_score += score * weights.direct_weight


def _credit_descendant(
    summary: AttributedFitnessSummary, facts: TraceFacts, score: float, weight: float
) -> None:
    summary.descendant_task_count += 1
    summary.subtree_task_count += 1
    summary.subtree_tokens += facts.token_total
    summary.subtree_latency_ms += facts.latency_ms
    summary.attribution_weight_total += weight
    summary.descendant_score += score * weight


def _finish(summary: AttributedFitnessSummary, complexity: float, weights: FitnessWeights) -> None:
    summary.raw_score = summary.direct_score + summary.descendant_score
    summary.complexity_penalty = complexity * weights.org_complexity_weight
    summary.final_score = summary.raw_score - summary.complexity_penalty

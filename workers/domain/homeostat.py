"""The Three-Four homeostat: present versus future, and the bounded adaptations it suggests. Pure.

System 3 runs the organization as it is; System 4 looks at what is coming. When they report
on the balance between the two, the controller records it (:func:`homeostat_event`, read as
environment pressure) and turns each genome patch they suggest into a gene suggestion
(:func:`gene_suggestion_drafts`): a bounded Canary trial, never a change applied directly.
Serious or conflicted signals need an operator's approval before their trial may start.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from organization.genome.patches import parse_patch, patch_to_json
from workers.domain.channel_messages import (
    ChannelEvent,
    HomeostatBalance,
    ThreeFourHomeostatSignal,
    check_kind,
    correlation_of,
    event_payload,
    kind_label,
)
from workers.domain.messages import JsonObject, MessageEnvelope, new_id, to_json

HOMEOSTAT_SIGNAL_EVENT = "three_four_homeostat_signal"
GENE_SUGGESTION_CREATED_EVENT = "gene_suggestion_created"

HOMEOSTAT_MAX_TASKS = 10
HOMEOSTAT_MAX_TOKEN_BUDGET = 100_000
HOMEOSTAT_TRAFFIC_SHARE_BASIS_POINTS = 1000
APPROVAL_SEVERITY = 7
DEFAULT_SUCCESS_METRICS = ("accepted_task_value", "regression_rate")
DEFAULT_FAILURE_METRICS = ("token_cost", "revert_rate")


class SuggestionSource(enum.StrEnum):
    SYSTEM3_STAR_AUDIT = "System3StarAudit"
    SYSTEM4_FUTURE_PROBE = "System4FutureProbe"
    SYSTEM1_RESOURCE_BARGAIN = "System1ResourceBargain"
    SYSTEM2_COORDINATION_SIGNAL = "System2CoordinationSignal"
    ALGEDONIC_SIGNAL = "AlgedonicSignal"
    OTHER = "Other"


class TrialMode(enum.StrEnum):
    SHADOW = "Shadow"
    PROBATION = "Probation"
    CANARY = "Canary"
    DIRECT = "Direct"


@dataclass(kw_only=True)
class SafetyLimits:
    max_token_budget: int | None = None
    max_tasks: int | None = None
    max_traffic_share_basis_points: int | None = None
    max_files_touched: int | None = None
    allowed_task_classes: list[str] = field(default_factory=list)
    requires_approval: bool = False


@dataclass(kw_only=True)
class MeasurementPlan:
    window_tasks: int = 25
    window_days: int | None = None
    # CurrentParent, ChampionGenome, or "Sibling:<node>" / "Baseline:<name>".
    compare_against: str = "CurrentParent"
    success_metrics: list[str] = field(default_factory=lambda: list(DEFAULT_SUCCESS_METRICS))
    failure_metrics: list[str] = field(default_factory=lambda: list(DEFAULT_FAILURE_METRICS))


@dataclass(kw_only=True)
class RollbackPlan:
    remove_nodes: list[str] = field(default_factory=list)
    restore_genome_id: str | None = None
    notes: str | None = None


@dataclass(kw_only=True)
class GeneSuggestionDraft:
    """A suggested genome change, waiting for the trials queue.

    ``patch`` is the patch's complete JSON form; the defaults are those of any new
    suggestion (a Probation trial, no limits), which the homeostat tightens.
    """

    id: str = field(default_factory=new_id)
    suggested_by_node_id: str
    target_node_id: str
    source: SuggestionSource
    other_source: str | None = None
    patch: JsonObject
    evidence: list[str] = field(default_factory=list)
    hypothesis: str = ""
    trial_mode: TrialMode = TrialMode.PROBATION
    safety_limits: SafetyLimits = field(default_factory=SafetyLimits)
    measurement_plan: MeasurementPlan = field(default_factory=MeasurementPlan)
    rollback_plan: RollbackPlan = field(default_factory=RollbackPlan)

    def __post_init__(self) -> None:
        check_kind(self.source, self.other_source)


def homeostat_event(signal: ThreeFourHomeostatSignal, incoming: MessageEnvelope) -> ChannelEvent:
    """The ``three_four_homeostat_signal`` event, filed under the related task and suggestion."""
    payload = event_payload(signal, incoming)
    payload["suggested_patch_count"] = len(signal.suggested_patches)
    metadata = {
        "source_channel": incoming.channel_type.value,
        "homeostat_kind": kind_label(signal.kind, signal.other_kind),
        "homeostat_balance": signal.balance.value,
    }
    if signal.severity is not None:
        metadata["severity"] = str(signal.severity)
    return ChannelEvent(
        kind=HOMEOSTAT_SIGNAL_EVENT,
        payload=payload,
        metadata=metadata,
        task_id=signal.related_task_id,
        suggestion_id=signal.related_suggestion_id,
        correlation_id=correlation_of(incoming),
    )


def homeostat_evidence(signal: ThreeFourHomeostatSignal, incoming: MessageEnvelope) -> list[str]:
    """Where the suggestion came from and what the signal said, then the signal's evidence."""
    evidence = [
        f"source_channel={incoming.channel_type.value}",
        f"three_four_kind={kind_label(signal.kind, signal.other_kind)}",
        f"three_four_balance={signal.balance.value}",
    ]
    if signal.severity is not None:
        evidence.append(f"severity={signal.severity}")
    if incoming.correlation_id is not None:
        evidence.append(f"correlation_id={incoming.correlation_id}")
    if signal.present_summary:
        evidence.append(f"present_summary={signal.present_summary}")
    if signal.future_summary:
        evidence.append(f"future_summary={signal.future_summary}")
    evidence.append(f"recommendation={signal.recommendation}")
    return [*evidence, *signal.evidence]


def requires_approval(signal: ThreeFourHomeostatSignal) -> bool:
    """Severity 7 or more (1 when absent), or present and future in conflict."""
    severity = 1 if signal.severity is None else signal.severity
    return severity >= APPROVAL_SEVERITY or signal.balance is HomeostatBalance.CONFLICT


def gene_suggestion_drafts(
    signal: ThreeFourHomeostatSignal, incoming: MessageEnvelope
) -> list[GeneSuggestionDraft]:
    """One bounded Canary suggestion per suggested patch, in order.

    Each patch is parsed and stored in its complete form, so a queued suggestion replays
    exactly. Raises GenomeFormatError, naming the field, for a patch that is not one.
    """
    hypothesis = (
        f"Three-Four homeostat recommends a bounded adaptation: {signal.recommendation} "
        f"Present: {signal.present_summary} Future: {signal.future_summary}"
    )
    evidence = homeostat_evidence(signal, incoming)
    return [
        GeneSuggestionDraft(
            suggested_by_node_id=signal.system_4_node_id,
            target_node_id=signal.target_node_id,
            source=SuggestionSource.SYSTEM4_FUTURE_PROBE,
            patch=patch_to_json(parse_patch(patch)),
            evidence=list(evidence),
            hypothesis=hypothesis,
            trial_mode=TrialMode.CANARY,
            safety_limits=SafetyLimits(
                max_token_budget=HOMEOSTAT_MAX_TOKEN_BUDGET,
                max_tasks=HOMEOSTAT_MAX_TASKS,
                max_traffic_share_basis_points=HOMEOSTAT_TRAFFIC_SHARE_BASIS_POINTS,
                requires_approval=requires_approval(signal),
            ),
            measurement_plan=MeasurementPlan(
                success_metrics=[*DEFAULT_SUCCESS_METRICS, "three_four_homeostat_expected_value"],
                failure_metrics=[*DEFAULT_FAILURE_METRICS, "present_operational_regression"],
            ),
        )
        for patch in signal.suggested_patches
    ]


def gene_suggestion_event(draft: GeneSuggestionDraft, incoming: MessageEnvelope) -> ChannelEvent:
    """The ``gene_suggestion_created`` event for a draft: the draft, filed under its id."""
    payload: dict[str, Any] = to_json(draft)
    return ChannelEvent(
        kind=GENE_SUGGESTION_CREATED_EVENT,
        payload=payload,
        metadata={
            "source_channel": incoming.channel_type.value,
            "source_payload_type": incoming.payload_type,
        },
        suggestion_id=draft.id,
        correlation_id=correlation_of(incoming),
    )

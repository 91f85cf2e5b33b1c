"""Outputs (docs/rules/bargaining.md): event and reply metadata, payload, priority, and the
annotations of a proposed task accepted with the grant."""

from __future__ import annotations

import typing
from typing import Any

from organization.genome import ChannelPriority, VsmChannelType
from workers.domain.bargaining.epochs import (
    Budgets,
    EpochUsage,
    remaining_messages,
    remaining_tokens,
)
from workers.domain.bargaining.pressure import (
    NO_COORDINATION_PRESSURE,
    CoordinationPressure,
    homeostat_pressure_affects_allocation,
)
from workers.domain.bargaining.records import (
    ACCEPTED_ROUTING_REASON,
    AllocationStatus,
    PauseFacts,
    ResourceAllocationDecision,
    bool_text,
)
from workers.domain.decomposition import NO_PRESSURE, EnvironmentPressure
from workers.domain.messages import to_json


def epoch_metadata(
    decision: ResourceAllocationDecision, *, epoch_key: str, budgets: Budgets, usage: EpochUsage
) -> dict[str, str]:
    """The ``resource_epoch_*`` keys: usage before, this decision, and what is left after it."""
    counted = int(decision.uses_message_budget)
    granted = decision.approved_tokens or 0
    metadata = {
        "resource_epoch_key": epoch_key,
        "resource_epoch_allocation_count_before": str(usage.allocation_count),
        "resource_epoch_allocation_count_after": str(usage.allocation_count + counted),
        "resource_epoch_allocated_before_tokens": str(usage.allocated_tokens),
        "resource_epoch_approved_tokens": str(granted),
    }
    tokens_left = remaining_tokens(budgets, usage)
    if budgets.tokens is not None and tokens_left is not None:
        metadata["resource_epoch_budget_tokens"] = str(budgets.tokens)
        metadata["resource_epoch_remaining_before_tokens"] = str(tokens_left)
        metadata["resource_epoch_remaining_after_tokens"] = str(max(tokens_left - granted, 0))
    messages_left = remaining_messages(budgets, usage)
    if budgets.messages is not None and messages_left is not None:
        metadata["resource_epoch_message_budget"] = str(budgets.messages)
        metadata["resource_epoch_remaining_messages_before"] = str(messages_left)
        metadata["resource_epoch_remaining_messages_after"] = str(max(messages_left - counted, 0))
    return metadata


def coordination_metadata(coordination: CoordinationPressure) -> dict[str, str]:
    """The ``coordination_*`` keys, only when the pressure affects allocation."""
    if not coordination.affects_allocation:
        return {}
    metadata = {
        "coordination_pressure_count": str(coordination.event_count),
        "coordination_contention_count": str(coordination.contention_count),
        "coordination_oscillation_count": str(coordination.oscillation_count),
        "coordination_dependency_blocked_count": str(coordination.dependency_blocked_count),
        "coordination_pressure": f"{coordination.pressure:.3f}",
        "coordination_max_severity": str(coordination.max_severity),
    }
    if coordination.reasons:
        metadata["coordination_pressure_reasons"] = "|".join(coordination.reasons)
    return metadata


def pause_metadata(pause: PauseFacts | None) -> dict[str, str]:
    if pause is None:
        return {}
    return {
        "algedonic_subtree_paused": "true",
        "algedonic_paused_target_node_id": pause.target_node_id,
        "algedonic_paused_at": pause.paused_at.isoformat(),
        "algedonic_pause_reason": pause.reason,
        "algedonic_pause_severity": str(pause.severity),
        "algedonic_pause_requires_human_confirmation": bool_text(pause.require_human_confirmation),
    }


def decision_metadata(
    decision: ResourceAllocationDecision,
    *,
    epoch_key: str,
    budgets: Budgets,
    usage: EpochUsage,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
    environment: EnvironmentPressure = NO_PRESSURE,
    pause: PauseFacts | None = None,
    source_channel: str = VsmChannelType.RESOURCE_BARGAINING.value,
    for_reply: bool = False,
) -> dict[str, str]:
    """Metadata of the ``resource_allocation_decision`` event, or of the reply envelope.

    The event carries ``source_channel`` and ``requested_by``; the reply carries
    ``allocation_policy`` and, as in the reference, not the ``homeostat_pressure_risk`` figure.
    Both carry the status, epoch, homeostat, coordination and pause keys. ``usage`` is the
    requester's usage *before* this decision.
    """
    if for_reply:
        metadata = {"allocation_policy": decision.allocation_policy}
    else:
        metadata = {"source_channel": source_channel, "requested_by": decision.requested_by}
    metadata.update(
        {
            "allocation_status": decision.status.value,
            **epoch_metadata(decision, epoch_key=epoch_key, budgets=budgets, usage=usage),
            **_homeostat_metadata(environment, with_risk=not for_reply),
            **coordination_metadata(coordination),
            **pause_metadata(pause),
        }
    )
    return dict(sorted(metadata.items()))


def decision_event_payload(decision: ResourceAllocationDecision) -> dict[str, Any]:
    """The event payload and reply body: the decision's JSON wire form."""
    return typing.cast(dict[str, Any], to_json(decision))


def reply_priority(decision: ResourceAllocationDecision) -> ChannelPriority:
    """Normal for a full approval; anything less needs the child's attention sooner."""
    if decision.status is AllocationStatus.APPROVED:
        return ChannelPriority.NORMAL
    return ChannelPriority.HIGH


def accepted_task_metadata(
    decision: ResourceAllocationDecision,
    *,
    controller_id: str,
    request_message_id: str,
    correlation_id: str | None,
    epoch_key: str,
    budgets: Budgets,
    usage: EpochUsage,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
) -> dict[str, str]:
    """Keys added to a proposed task accepted with the decision (Approved or Partially)."""
    metadata = {
        "resource_bargain_status": decision.status.value,
        "resource_bargain_policy": decision.allocation_policy,
        "resource_bargain_request_message_id": request_message_id,
        **epoch_metadata(decision, epoch_key=epoch_key, budgets=budgets, usage=usage),
        **coordination_metadata(coordination),
        "routed_by": controller_id,
        "routing_reason": ACCEPTED_ROUTING_REASON,
    }
    if correlation_id is not None:
        metadata["resource_bargain_correlation_id"] = correlation_id
    if decision.approved_tokens is not None:
        metadata["resource_bargain_approved_tokens"] = str(decision.approved_tokens)
    lists = {
        "resource_bargain_approved_tool_permissions": decision.approved_tool_permissions,
        "resource_bargain_approved_context_refs": decision.approved_context_refs,
        "resource_bargain_denied_tool_permissions": decision.denied_tool_permissions,
        "resource_bargain_denied_context_refs": decision.denied_context_refs,
    }
    metadata.update({key: ",".join(values) for key, values in lists.items() if values})
    return dict(sorted(metadata.items()))


def _homeostat_metadata(environment: EnvironmentPressure, *, with_risk: bool) -> dict[str, str]:
    if not homeostat_pressure_affects_allocation(environment):
        return {}
    metadata = {
        "homeostat_pressure_count": str(environment.homeostat_count),
        "homeostat_pressure_max_severity": str(environment.max_severity),
    }
    if with_risk:
        # The reference prints this one float in its shortest form ("12", "10.5").
        risk = environment.risk
        metadata["homeostat_pressure_risk"] = str(int(risk)) if risk.is_integer() else repr(risk)
    return metadata

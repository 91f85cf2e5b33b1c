"""Resource bargaining between a System 3 controller and its System 1 children (SPEC §5). Pure.

A child asks its controller for tokens, tool permissions and context refs (a
:class:`ResourceBargain`, perhaps carrying the task it proposes to do); :func:`decide` answers
with a :class:`ResourceAllocationDecision`, following §5.2 steps 0-9 in order with the reasons
worded exactly as the reference words them. Everything it reads is passed in: the genome, the
requester's usage of the current epoch (:func:`summarise_epoch_usage` over the controller's
``resource_allocation_decision`` events), the System 2 coordination pressure on the requester
(:func:`summarise_coordination_pressure`, §5.3), the environment pressure
(:func:`summarise_environment_pressure`, §5.4) and whether the requester's subtree is paused by
an algedonic signal (:class:`SubtreePause`, §6.3). :func:`decision_metadata`,
:func:`decision_event_payload`, :func:`reply_priority` and :func:`accepted_task_metadata` build
the §5.5 outputs.

Improvements on the reference (its weaknesses listed in SPEC §15):

* **Denied requests do not use up the message budget.** The reference counted every decision of
  the epoch, so a child refused for a bad request (or while paused) lost its quota for the hour.
  Here only Approved and PartiallyApproved decisions count: :func:`summarise_epoch_usage` skips
  Denied ones, and a Denied decision reports ``resource_epoch_allocation_count_after`` equal to
  ``..._before`` and ``resource_epoch_remaining_messages_after`` equal to ``..._before``.
* **Epoch length is configurable.** :func:`epoch_key` takes ``epoch_seconds`` (default 3600).
  Epochs are aligned to multiples of ``epoch_seconds`` since the Unix epoch, and the key is the
  epoch's first instant in UTC, ``YYYY-MM-DDTHH:MM:SSZ``: hourly keys are exactly the
  reference's ``YYYY-MM-DDTHH:00:00Z``, daily ones end in ``T00:00:00Z``.

Other choices: a naive datetime is refused (no guessing a time zone); a negative
``requested_tokens`` is refused when the bargain is built (the reference's unsigned type made it
impossible); the summaries ignore events of other kinds, but which "last N" events to pass is
the caller's choice.
"""

from __future__ import annotations

import calendar
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from organization.genome import (
    ChannelPriority,
    NodeNotFound,
    OrganizationalGenome,
    ViableNode,
    VsmChannelType,
)
from workers.domain.decomposition import NO_PRESSURE, EnvironmentPressure
from workers.domain.messages import TaskPacket, now_rfc3339, to_json

ALLOCATION_POLICY = "system3_genome_resource_policy_v1"
ACCEPTED_ROUTING_REASON = "accepted through ResourceBargaining allocation"
DEFAULT_EPOCH_SECONDS = 3600
MAX_REASONS = 8

DECISION_EVENT_KIND = "resource_allocation_decision"
COORDINATION_EVENT_KIND = "system2_coordination_signal"
HOMEOSTAT_EVENT_KIND = "three_four_homeostat_signal"
ENVIRONMENT_EVENT_KINDS = frozenset(
    {
        "operation_environment_signal",
        "future_probe_environment_signal",
        "environment_interaction_signal",
        HOMEOSTAT_EVENT_KIND,
    }
)

# A ledger event as plain data: {"kind": str, "payload": {...}, "metadata": {str: str}}.
EventRecord = Mapping[str, Any]
_UNSIGNED = re.compile(r"\+?[0-9]+")


class AllocationStatus(StrEnum):
    APPROVED = "Approved"
    PARTIALLY_APPROVED = "PartiallyApproved"
    DENIED = "Denied"


@dataclass(kw_only=True)
class ResourceBargain:
    """A System 1 child's request to its System 3 controller (SPEC §1.4)."""

    requested_by: str
    task_id: str | None = None
    proposed_task: TaskPacket | None = None
    requested_tokens: int | None = None
    requested_tool_permissions: list[str] = field(default_factory=list)
    requested_context_refs: list[str] = field(default_factory=list)
    justification: str = ""

    def __post_init__(self) -> None:
        if self.requested_tokens is not None and self.requested_tokens < 0:
            raise ValueError(f"requested_tokens must not be negative, got {self.requested_tokens}")


@dataclass(kw_only=True)
class ResourceAllocationDecision:
    """System 3's answer to a bargain (SPEC §1.4); ``approved_tokens`` None = no tokens."""

    requested_by: str
    task_id: str | None = None
    status: AllocationStatus
    approved_tokens: int | None = None
    approved_tool_permissions: list[str] = field(default_factory=list)
    denied_tool_permissions: list[str] = field(default_factory=list)
    approved_context_refs: list[str] = field(default_factory=list)
    denied_context_refs: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    allocation_policy: str = ALLOCATION_POLICY
    created_at: str = field(default_factory=now_rfc3339)

    @property
    def uses_message_budget(self) -> bool:
        """Whether this decision counts toward the epoch's message budget (not when Denied)."""
        return self.status is not AllocationStatus.DENIED

    @property
    def accepts_work(self) -> bool:
        return self.uses_message_budget


@dataclass(frozen=True, kw_only=True)
class SubtreePause:
    """The algedonic pause covering the requester (SPEC §6.2): its target may be an ancestor."""

    target_node_id: str
    paused_at: datetime
    reason: str
    severity: int = 1
    require_human_confirmation: bool = False


# -- epochs and budgets (§5.1) -------------------------------------------------------------------


def epoch_key(moment: datetime, *, epoch_seconds: int = DEFAULT_EPOCH_SECONDS) -> str:
    """The key of the epoch holding ``moment``: its first instant, ``YYYY-MM-DDTHH:MM:SSZ``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("epoch_key needs a timezone-aware datetime")
    if epoch_seconds <= 0:
        raise ValueError(f"epoch_seconds must be positive, got {epoch_seconds}")
    seconds = calendar.timegm(moment.utctimetuple())  # whole seconds, exact
    start = datetime.fromtimestamp(seconds - seconds % epoch_seconds, UTC)
    return (
        f"{start.year:04d}-{start.month:02d}-{start.day:02d}"
        f"T{start.hour:02d}:{start.minute:02d}:{start.second:02d}Z"
    )


@dataclass(frozen=True)
class Budgets:
    """Per-epoch limits of one controller-child edge; None = unlimited."""

    tokens: int | None = None
    messages: int | None = None


@dataclass(frozen=True)
class EpochUsage:
    """What the requester used this epoch: counted decisions and tokens granted."""

    allocation_count: int = 0
    allocated_tokens: int = 0


NO_USAGE = EpochUsage()


def edge_budgets(genome: OrganizationalGenome, controller_id: str, requester_id: str) -> Budgets:
    """The smallest budgets over ResourceBargaining channels joining the two, either way round."""
    ends = {(controller_id, requester_id), (requester_id, controller_id)}
    channels = [
        channel
        for channel in genome.channels
        if channel.channel_type is VsmChannelType.RESOURCE_BARGAINING
        and (channel.from_node_id, channel.to_node_id) in ends
    ]
    tokens = [c.max_token_budget_per_epoch for c in channels]
    messages = [c.max_messages_per_epoch for c in channels]
    return Budgets(
        tokens=min((t for t in tokens if t is not None), default=None),
        messages=min((m for m in messages if m is not None), default=None),
    )


def remaining_tokens(budgets: Budgets, usage: EpochUsage) -> int | None:
    return None if budgets.tokens is None else max(budgets.tokens - usage.allocated_tokens, 0)


def remaining_messages(budgets: Budgets, usage: EpochUsage) -> int | None:
    return None if budgets.messages is None else max(budgets.messages - usage.allocation_count, 0)


def summarise_epoch_usage(
    events: Iterable[EventRecord], *, epoch_key: str, requested_by: str
) -> EpochUsage:
    """Usage of ``requested_by`` in the epoch, from ``resource_allocation_decision`` events.

    Denied decisions are skipped (see the module docstring). Granted tokens are read from
    metadata ``resource_epoch_approved_tokens``, else from the payload's ``approved_tokens``.
    """
    count = tokens = 0
    for event in events:
        payload, metadata = _parts(event)
        if (
            event.get("kind") != DECISION_EVENT_KIND
            or metadata.get("resource_epoch_key") != epoch_key
            or metadata.get("requested_by") != requested_by
        ):
            continue
        status = metadata.get("allocation_status", payload.get("status"))
        if status == AllocationStatus.DENIED.value:
            continue
        count += 1
        granted = _text_unsigned(metadata.get("resource_epoch_approved_tokens"))
        if granted is None:
            granted = _json_unsigned(payload.get("approved_tokens"))
        tokens += granted or 0
    return EpochUsage(allocation_count=count, allocated_tokens=tokens)


# -- System 2 coordination pressure (§5.3) -------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CoordinationPressure:
    """Contention, oscillation and blocked dependencies System 2 reported around one child."""

    event_count: int = 0
    contention_count: int = 0
    oscillation_count: int = 0
    dependency_blocked_count: int = 0
    pressure: float = 0.0
    max_severity: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def affects_allocation(self) -> bool:
        return self.event_count > 0 and (self.max_severity >= 5 or self.pressure >= 8)

    def token_cap(self, requested_tokens: int) -> int | None:
        """A half (a quarter under heavy pressure) of the request, when the pressure applies."""
        if not self.affects_allocation:
            return None
        heavy = self.max_severity >= 8 or self.oscillation_count > 1 or self.pressure >= 16
        return max(1, requested_tokens // (4 if heavy else 2))

    def as_json(self) -> dict[str, Any]:
        return {
            "event_count": self.event_count,
            "contention_count": self.contention_count,
            "oscillation_count": self.oscillation_count,
            "dependency_blocked_count": self.dependency_blocked_count,
            "pressure": self.pressure,
            "max_severity": self.max_severity,
            "reasons": list(self.reasons),
        }


NO_COORDINATION_PRESSURE = CoordinationPressure()
_COORDINATION_FACTORS = {"Contention": 1.0, "Oscillation": 1.25, "DependencyBlocked": 0.75}


def summarise_coordination_pressure(
    events: Iterable[EventRecord], requester_id: str
) -> CoordinationPressure:
    """Pressure from ``system2_coordination_signal`` events naming the requester as source,
    target or affected node. Severity: payload, else metadata, else 1; at most 10."""
    counts = dict.fromkeys(_COORDINATION_FACTORS, 0)
    pressure, max_severity = 0.0, 0
    reasons: list[str] = []
    for event in events:
        payload, metadata = _parts(event)
        if event.get("kind") != COORDINATION_EVENT_KIND or not _names(payload, requester_id):
            continue
        kind = _first_text(payload.get("kind"), metadata.get("coordination_kind"), default="Other")
        if kind not in _COORDINATION_FACTORS:
            continue
        severity = _json_unsigned(payload.get("severity"))
        if severity is None:
            severity = _text_unsigned(metadata.get("severity"))
        severity = min(1 if severity is None else severity, 10)
        counts[kind] += 1
        pressure += max(severity, 1) * _COORDINATION_FACTORS[kind]
        max_severity = max(max_severity, severity)
        if len(reasons) < MAX_REASONS:
            reasons.append(f"system2_coordination kind={kind} severity={severity}")
    return CoordinationPressure(
        event_count=sum(counts.values()),
        contention_count=counts["Contention"],
        oscillation_count=counts["Oscillation"],
        dependency_blocked_count=counts["DependencyBlocked"],
        pressure=pressure,
        max_severity=max_severity,
        reasons=tuple(reasons),
    )


def _names(payload: Mapping[str, Any], node_id: str) -> bool:
    affected = payload.get("affected_node_ids")
    return (
        payload.get("source_node_id") == node_id
        or payload.get("target_node_id") == node_id
        or (isinstance(affected, list) and node_id in affected)
    )


# -- environment pressure (§5.4) -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class EnvironmentPressureDetails:
    """The full §5.4 summary; ``pressure`` is the part decomposition and bargaining read."""

    pressure: EnvironmentPressure = NO_PRESSURE
    future_probe_count: int = 0
    interaction_count: int = 0
    reasons: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "event_count": self.pressure.event_count,
            "risk_pressure": self.pressure.risk,
            "opportunity_pressure": self.pressure.opportunity,
            "feedback_pressure": self.pressure.feedback,
            "future_probe_count": self.future_probe_count,
            "environment_interaction_count": self.interaction_count,
            "homeostat_count": self.pressure.homeostat_count,
            "max_severity": self.pressure.max_severity,
            "reasons": list(self.reasons),
        }


# Which pressure (risk, opportunity or feedback) an event feeds, and with what factor, by the
# payload kind of the signal and by the balance of a Three-Four homeostat signal.
_KIND_PRESSURE: dict[str, tuple[str, float]] = {
    "Risk": ("risk", 1.0),
    "Opportunity": ("opportunity", 1.0),
    "UserFeedback": ("feedback", 1.0),
    "DependencyChange": ("risk", 0.75),
    "CapabilityChange": ("opportunity", 0.75),
    "FutureRisk": ("risk", 1.0),
    "PresentConstraint": ("risk", 1.0),
    "ResourceImbalance": ("risk", 1.0),
    "CoordinationDebt": ("risk", 1.0),
    "FutureOpportunity": ("opportunity", 1.0),
    "CapabilityGap": ("opportunity", 1.0),
}
_BALANCE_PRESSURE: dict[str, tuple[str, float]] = {
    "FutureDominant": ("opportunity", 0.5),
    "PresentDominant": ("risk", 0.5),
    "Conflict": ("risk", 0.5),
    "Balanced": ("feedback", 0.25),
}
_PROBE = VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT.value
_INTERACTION = VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT.value
_HOMEOSTAT = VsmChannelType.THREE_FOUR_HOMEOSTAT.value


def environment_pressure_details(events: Iterable[EventRecord]) -> EnvironmentPressureDetails:
    """Risk, opportunity and feedback pressure from environment and homeostat events.

    Severity is the payload's (1 when absent, at most 10); each event weighs max(severity, 1).
    """
    total = {"risk": 0.0, "opportunity": 0.0, "feedback": 0.0}
    count = homeostats = probes = interactions = max_severity = 0
    reasons: list[str] = []
    for event in events:
        payload, metadata = _parts(event)
        if event.get("kind") not in ENVIRONMENT_EVENT_KINDS:
            continue
        count += 1
        severity = _json_unsigned(payload.get("severity"))
        severity = min(1 if severity is None else severity, 10)
        max_severity = max(max_severity, severity)
        weight = float(max(severity, 1))
        kind = _first_text(payload.get("kind"), default="Observation")
        channel = _first_text(
            payload.get("source_channel"), metadata.get("source_channel"), default="Unknown"
        )

        if kind in _KIND_PRESSURE:
            name, factor = _KIND_PRESSURE[kind]
            total[name] += weight * factor
        if channel == _PROBE:
            probes += 1
            if kind != "Opportunity":
                total["opportunity"] += weight * 0.35
        elif channel == _INTERACTION:
            interactions += 1
            if kind != "Risk":
                total["risk"] += weight * 0.35
        elif channel == _HOMEOSTAT:
            homeostats += 1
            balance = _first_text(payload.get("balance"), default="Balanced")
            if balance in _BALANCE_PRESSURE:
                name, factor = _BALANCE_PRESSURE[balance]
                total[name] += weight * factor
        if event.get("kind") == HOMEOSTAT_EVENT_KIND and channel != _HOMEOSTAT:
            homeostats += 1
        if len(reasons) < MAX_REASONS:
            reasons.append(f"environment_signal channel={channel} kind={kind} severity={severity}")
    pressure = EnvironmentPressure(
        event_count=count,
        homeostat_count=homeostats,
        risk=total["risk"],
        opportunity=total["opportunity"],
        feedback=total["feedback"],
        max_severity=max_severity,
    )
    return EnvironmentPressureDetails(
        pressure=pressure,
        future_probe_count=probes,
        interaction_count=interactions,
        reasons=tuple(reasons),
    )


def summarise_environment_pressure(events: Iterable[EventRecord]) -> EnvironmentPressure:
    return environment_pressure_details(events).pressure


def homeostat_pressure_affects_allocation(pressure: EnvironmentPressure) -> bool:
    return pressure.homeostat_count > 0 and pressure.max_severity >= 7 and pressure.risk >= 7


def homeostat_token_cap(pressure: EnvironmentPressure, requested_tokens: int) -> int | None:
    """A half (a quarter when severe or very risky) of the request, when the pressure applies."""
    if not homeostat_pressure_affects_allocation(pressure):
        return None
    severe = pressure.max_severity >= 9 or pressure.risk >= 12
    return max(1, requested_tokens // (4 if severe else 2))


# -- the decision (§5.2) -------------------------------------------------------------------------


def decide(
    bargain: ResourceBargain,
    *,
    genome: OrganizationalGenome,
    controller_id: str,
    usage: EpochUsage = NO_USAGE,
    pause: SubtreePause | None = None,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
    environment: EnvironmentPressure = NO_PRESSURE,
    now: datetime | None = None,
) -> ResourceAllocationDecision:
    """System 3's answer to ``bargain`` from ``controller_id``, by SPEC §5.2 steps 0-9.

    Steps 0-5 refuse the whole bargain (every requested permission and ref is listed as
    denied); past them, tokens, tool permissions and context refs are granted one by one and
    the status says whether all, some or none were. Never raises for a bad bargain: an
    unknown node or a mismatched task id is a Denied decision.
    """
    created_at = now_rfc3339() if now is None else _rfc3339(now)
    task_id = bargain.task_id
    if task_id is None and bargain.proposed_task is not None:
        task_id = bargain.proposed_task.id
    refusal = _refusal(
        bargain, genome=genome, controller_id=controller_id, usage=usage, pause=pause
    )
    if refusal is not None:
        return ResourceAllocationDecision(
            requested_by=bargain.requested_by,
            task_id=task_id,
            status=AllocationStatus.DENIED,
            denied_tool_permissions=list(bargain.requested_tool_permissions),
            denied_context_refs=list(bargain.requested_context_refs),
            reasons=[refusal],
            created_at=created_at,
        )

    controller, requester = genome.nodes[controller_id], genome.nodes[bargain.requested_by]
    decision = ResourceAllocationDecision(
        requested_by=bargain.requested_by,
        task_id=task_id,
        status=AllocationStatus.DENIED,
        created_at=created_at,
    )
    requested = bargain.requested_tokens
    if requested is not None:
        left = remaining_tokens(edge_budgets(genome, controller_id, requester.id), usage)
        cap = _task_token_cap(controller, requester)
        decision.approved_tokens = _grant_tokens(
            requested, cap, environment, coordination, left, decision.reasons
        )
    for permission in bargain.requested_tool_permissions:
        if tool_permission_allowed(requester, permission):
            decision.approved_tool_permissions.append(permission)
        else:
            decision.denied_tool_permissions.append(permission)
            decision.reasons.append(f"tool_permission_denied={permission}")
    for context_ref in bargain.requested_context_refs:
        if context_ref_allowed(requester, context_ref):
            decision.approved_context_refs.append(context_ref)
        else:
            decision.denied_context_refs.append(context_ref)
            decision.reasons.append(f"context_ref_denied={context_ref}")
    decision.status = _status(bargain, decision)
    return decision


def _refusal(
    bargain: ResourceBargain,
    *,
    genome: OrganizationalGenome,
    controller_id: str,
    usage: EpochUsage,
    pause: SubtreePause | None,
) -> str | None:
    """The reason steps 0-5 refuse the whole bargain, or None when it may be weighed."""
    proposed = bargain.proposed_task
    if proposed is not None and bargain.task_id is not None and bargain.task_id != proposed.id:
        return (
            f"resource bargain task_id {bargain.task_id} does not match proposed_task id "
            f"{proposed.id}"
        )
    if pause is not None:
        return (
            f"ResourceBargaining denied because subtree {pause.target_node_id} is paused by "
            f"algedonic signal: {pause.reason}"
        )
    controller = genome.nodes.get(controller_id)
    if controller is None:
        return f"controller node unavailable: {NodeNotFound(controller_id)}"
    if bargain.requested_by not in genome.nodes:
        return f"requesting node unavailable: {NodeNotFound(bargain.requested_by)}"
    if bargain.requested_by not in controller.children:
        return "requesting node is not a direct System 1 child of this System 3 controller"
    if not controller.system_3.can_allocate_budget:
        return "System 3 resource allocation disabled by genome policy"
    budgets = edge_budgets(genome, controller_id, bargain.requested_by)
    if remaining_messages(budgets, usage) == 0:
        return "ResourceBargaining message budget exhausted for this epoch"
    return None


def _task_token_cap(controller: ViableNode, requester: ViableNode) -> int | None:
    caps = [
        controller.system_3.default_task_budget_tokens,
        requester.context_policy.max_total_task_tokens,
    ]
    return min((cap for cap in caps if cap is not None), default=None)


def _grant_tokens(
    requested: int,
    cap: int | None,
    environment: EnvironmentPressure,
    coordination: CoordinationPressure,
    epoch_remaining: int | None,
    reasons: list[str],
) -> int | None:
    """Step 6: the tokens granted (None = none), appending the reason for every cut."""
    pressure_caps = (
        (homeostat_token_cap(environment, requested), "Three-Four homeostat resource pressure"),
        (coordination.token_cap(requested), "System 2 coordination pressure"),
    )
    for pressure_cap, source in pressure_caps:
        if pressure_cap is None:
            continue
        lowered = cap is None or pressure_cap < cap
        cap = pressure_cap if cap is None else min(cap, pressure_cap)
        if lowered:
            reasons.append(f"requested_tokens={requested} capped_to={cap} by {source}")
    if epoch_remaining is not None:
        lowered = cap is None or epoch_remaining < cap
        cap = epoch_remaining if cap is None else min(cap, epoch_remaining)
        if epoch_remaining == 0:
            reasons.append("ResourceBargaining token budget exhausted for this epoch")
        elif lowered and requested > epoch_remaining:
            reasons.append(
                f"requested_tokens={requested} capped_to={epoch_remaining} "
                "by ResourceBargaining epoch budget"
            )
    if cap == 0:
        reasons.append("token request denied because effective token cap is zero")
        return None
    if cap is not None and requested > cap:
        reasons.append(f"requested_tokens={requested} capped_to={cap} by System 3 resource policy")
        return cap
    return requested


def tool_permission_allowed(node: ViableNode, permission: str) -> bool:
    """Not denied; listed if an allow-list exists; else any tool's name or permission, if the
    node has tools at all (a node without tools may ask for anything)."""
    if permission in node.permissions.denied_tools:
        return False
    if node.permissions.allowed_tools:
        return permission in node.permissions.allowed_tools
    if not node.tools:
        return True
    return any(
        tool.enabled and (tool.name == permission or permission in tool.permissions)
        for tool in node.tools
    )


def context_ref_allowed(node: ViableNode, context_ref: str) -> bool:
    """Any ref when the node declares none, else only a fixed or retrievable one."""
    policy = node.context_policy
    if not policy.fixed_context_refs and not policy.retrievable_context_refs:
        return True
    return (
        context_ref in policy.fixed_context_refs or context_ref in policy.retrievable_context_refs
    )


def _status(bargain: ResourceBargain, decision: ResourceAllocationDecision) -> AllocationStatus:
    """Step 9: compare what was asked with what was granted."""
    asked, granted = bargain.requested_tokens, decision.approved_tokens
    requested = (asked is not None) + len(bargain.requested_tool_permissions)
    requested += len(bargain.requested_context_refs)
    approved = (granted is not None) + len(decision.approved_tool_permissions)
    approved += len(decision.approved_context_refs)
    # Refused tokens and cut tokens each count once as denied (they cannot both happen).
    tokens_short = asked is not None and (granted is None or granted < asked)
    denied = len(decision.denied_tool_permissions) + len(decision.denied_context_refs)
    denied += tokens_short
    if requested == 0:
        decision.reasons.append("no concrete resource request supplied")
        return AllocationStatus.DENIED
    if approved == requested and denied == 0:
        decision.reasons.append("resource bargain approved within System 3 policy")
        return AllocationStatus.APPROVED
    return AllocationStatus.PARTIALLY_APPROVED if approved > 0 else AllocationStatus.DENIED


# -- outputs (§5.5) ------------------------------------------------------------------------------


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


def pause_metadata(pause: SubtreePause | None) -> dict[str, str]:
    if pause is None:
        return {}
    return {
        "algedonic_subtree_paused": "true",
        "algedonic_paused_target_node_id": pause.target_node_id,
        "algedonic_paused_at": pause.paused_at.isoformat(),
        "algedonic_pause_reason": pause.reason,
        "algedonic_pause_severity": str(pause.severity),
        "algedonic_pause_requires_human_confirmation": _bool_text(pause.require_human_confirmation),
    }


def decision_metadata(
    decision: ResourceAllocationDecision,
    *,
    epoch_key: str,
    budgets: Budgets,
    usage: EpochUsage,
    coordination: CoordinationPressure = NO_COORDINATION_PRESSURE,
    environment: EnvironmentPressure = NO_PRESSURE,
    pause: SubtreePause | None = None,
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


# -- readers -------------------------------------------------------------------------------------


def _parts(event: EventRecord) -> tuple[Mapping[str, Any], Mapping[str, str]]:
    payload, metadata = event.get("payload"), event.get("metadata")
    return (
        payload if isinstance(payload, Mapping) else {},
        metadata if isinstance(metadata, Mapping) else {},
    )


def _first_text(*values: Any, default: str) -> str:
    return next((value for value in values if isinstance(value, str)), default)


def _json_unsigned(value: Any) -> int | None:
    """A JSON non-negative integer (not a bool, not a float), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _text_unsigned(value: str | None) -> int | None:
    return int(value) if value is not None and _UNSIGNED.fullmatch(value) else None


def _bool_text(value: bool) -> str:
    return "true" if value else "false"


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("decision time must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")

"""The payloads of the coordination, handoff, environment and homeostat channels. Pure.

System 2 coordination signals, operation handoffs between System 1 units, management
directives from a manager to an operation, signals from (and about) the environment, and the
Three-Four homeostat's balance of present and future. ``to_json`` / ``from_json`` in
:mod:`workers.domain.messages` give their wire form.

**Kinds with free text.** Every payload has a ``kind`` drawn from a known list plus "Other,
with a description". Here that is a :class:`~enum.StrEnum` of the known values (``Other``
included) and a separate ``other_kind`` text, which must be set exactly when the kind is
``Other``: the wire form stays flat (``"kind": "Other", "other_kind": "flaky runner"``),
every reader that matches on known kinds keeps working on the plain ``kind`` string, and
:func:`kind_label` gives the one-string form used in metadata and evidence
(``"Contention"``, or ``"other:flaky runner"``, the same spelling as the ledger's own
``other:<x>`` kinds).

Events the controller records for these payloads are :class:`ChannelEvent` values: the ledger
has no metadata column, so the ``metadata`` tags travel beside the payload and the controller
decides where to keep them; :meth:`ChannelEvent.as_record` is the plain
``{"kind", "payload", "metadata"}`` record the pressure summaries read.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from workers.domain.messages import (
    JsonObject,
    MessageEnvelope,
    RiskClass,
    TaskArtifact,
    new_id,
    now_rfc3339,
    to_json,
)

OTHER = "Other"


class CoordinationKind(enum.StrEnum):
    DEPENDENCY_BLOCKED = "DependencyBlocked"
    DEPENDENCY_READY = "DependencyReady"
    CONTENTION = "Contention"
    OSCILLATION = "Oscillation"
    HANDOFF_NOTICE = "HandoffNotice"
    OTHER = OTHER


class HandoffKind(enum.StrEnum):
    WORK_IN_PROGRESS = "WorkInProgress"
    DEPENDENCY_READY = "DependencyReady"
    DEPENDENCY_BLOCKED = "DependencyBlocked"
    ARTIFACT_TRANSFER = "ArtifactTransfer"
    REVIEW_REQUEST = "ReviewRequest"
    OTHER = OTHER


class ManagementDirectiveKind(enum.StrEnum):
    ASSIGN_WORK = "AssignWork"
    REPRIORITIZE = "Reprioritize"
    INTEGRATE_RESULT = "IntegrateResult"
    REQUEST_STATUS = "RequestStatus"
    LOCAL_POLICY = "LocalPolicy"
    OTHER = OTHER


class EnvironmentSignalKind(enum.StrEnum):
    OBSERVATION = "Observation"
    USER_FEEDBACK = "UserFeedback"
    ARTIFACT = "Artifact"
    DEPENDENCY_CHANGE = "DependencyChange"
    CAPABILITY_CHANGE = "CapabilityChange"
    RISK = "Risk"
    OPPORTUNITY = "Opportunity"
    OTHER = OTHER


class HomeostatKind(enum.StrEnum):
    PRESENT_CONSTRAINT = "PresentConstraint"
    FUTURE_RISK = "FutureRisk"
    FUTURE_OPPORTUNITY = "FutureOpportunity"
    CAPABILITY_GAP = "CapabilityGap"
    RESOURCE_IMBALANCE = "ResourceImbalance"
    COORDINATION_DEBT = "CoordinationDebt"
    OTHER = OTHER


class HomeostatBalance(enum.StrEnum):
    PRESENT_DOMINANT = "PresentDominant"
    FUTURE_DOMINANT = "FutureDominant"
    BALANCED = "Balanced"
    CONFLICT = "Conflict"


def kind_label(kind: enum.StrEnum, other_kind: str | None) -> str:
    """One string for a kind: its value, or ``other:<text>`` for Other."""
    if kind.value == OTHER:
        return f"other:{other_kind}"
    return kind.value


def check_kind(kind: enum.StrEnum, other_kind: str | None) -> None:
    """Other needs its description, and only Other may have one (ValueError otherwise)."""
    if kind.value == OTHER and not other_kind:
        raise ValueError("kind Other needs other_kind, a short description")
    if kind.value != OTHER and other_kind is not None:
        raise ValueError(f"other_kind is only for kind Other, not {kind.value}")


@dataclass(kw_only=True)
class System2CoordinationSignal:
    """System 2 reporting how System 1 units get in each other's way (or no longer do)."""

    coordinator_node_id: str
    source_node_id: str | None = None
    target_node_id: str | None = None
    affected_node_ids: list[str] = field(default_factory=list)
    affected_task_ids: list[str] = field(default_factory=list)
    kind: CoordinationKind
    other_kind: str | None = None
    summary: str = ""
    evidence: list[str] = field(default_factory=list)
    severity: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=now_rfc3339)

    def __post_init__(self) -> None:
        check_kind(self.kind, self.other_kind)


@dataclass(kw_only=True)
class OperationHandoff:
    """One System 1 unit handing work (or news of it) to a sibling, through their controller."""

    source_node_id: str
    target_node_id: str
    related_task_id: str | None = None
    dependency_task_ids: list[str] = field(default_factory=list)
    kind: HandoffKind
    other_kind: str | None = None
    title: str
    summary: str = ""
    artifacts: list[TaskArtifact] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=now_rfc3339)

    def __post_init__(self) -> None:
        check_kind(self.kind, self.other_kind)


@dataclass(kw_only=True)
class ManagementOperationDirective:
    """A manager telling one of its operations what to do next (work, priority, policy)."""

    manager_node_id: str
    operation_node_id: str
    related_task_id: str | None = None
    dependency_task_ids: list[str] = field(default_factory=list)
    kind: ManagementDirectiveKind
    other_kind: str | None = None
    title: str
    body: str = ""
    target_state: str | None = None
    constraints: list[str] = field(default_factory=list)
    context_refs: list[str] = field(default_factory=list)
    authority_refs: list[str] = field(default_factory=list)
    risk: RiskClass = RiskClass.MEDIUM
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=now_rfc3339)

    def __post_init__(self) -> None:
        check_kind(self.kind, self.other_kind)


@dataclass(kw_only=True)
class EnvironmentSignal:
    """Something the environment did or said: a CI failure, user feedback, an opportunity.

    ``id`` is ours (the reference has none): an outside signal is answered with it.
    """

    id: str = field(default_factory=new_id)
    observed_by_node_id: str | None = None
    target_node_id: str | None = None
    related_task_id: str | None = None
    related_suggestion_id: str | None = None
    source_environment: str
    target_environment: str | None = None
    kind: EnvironmentSignalKind
    other_kind: str | None = None
    summary: str = ""
    evidence: list[str] = field(default_factory=list)
    severity: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=now_rfc3339)

    def __post_init__(self) -> None:
        check_kind(self.kind, self.other_kind)


@dataclass(kw_only=True)
class ThreeFourHomeostatSignal:
    """System 3 (the present) and System 4 (the future) on how the balance stands.

    ``suggested_patches`` are genome patches in their JSON form (``{"kind": ..., ...}``).
    """

    system_3_node_id: str
    system_4_node_id: str
    target_node_id: str
    related_task_id: str | None = None
    related_suggestion_id: str | None = None
    kind: HomeostatKind
    other_kind: str | None = None
    balance: HomeostatBalance
    present_summary: str = ""
    future_summary: str = ""
    recommendation: str = ""
    evidence: list[str] = field(default_factory=list)
    suggested_patches: list[JsonObject] = field(default_factory=list)
    severity: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=now_rfc3339)

    def __post_init__(self) -> None:
        check_kind(self.kind, self.other_kind)


# -- events ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChannelEvent:
    """A ledger event to record: kind, payload, tags, and the ids it is filed under."""

    kind: str
    payload: JsonObject
    metadata: dict[str, str] = field(default_factory=dict)
    task_id: str | None = None
    suggestion_id: str | None = None
    correlation_id: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {"kind": self.kind, "payload": self.payload, "metadata": self.metadata}


def correlation_of(incoming: MessageEnvelope) -> str:
    """The conversation an envelope belongs to: its correlation id, else its own id."""
    return incoming.correlation_id or incoming.id


def event_payload(message: Any, incoming: MessageEnvelope) -> JsonObject:
    """A message's wire form plus where it came from.

    ``causation_id`` is the envelope that caused the event and ``correlation_id`` its
    conversation, as on every other event a controller records for an envelope.
    """
    payload: JsonObject = to_json(message)
    payload.update(
        {
            "source_channel": incoming.channel_type.value,
            "source_payload_type": incoming.payload_type,
            "causation_id": incoming.id,
            "correlation_id": correlation_of(incoming),
        }
    )
    return payload


def joined(values: list[str]) -> str:
    return ",".join(values)

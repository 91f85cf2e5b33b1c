"""Bargaining vocabulary (docs/rules/bargaining.md): requests, decisions, pauses, readers.

Shared by every module of the package; imports nothing from Django.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from workers.domain.messages import TaskPacket, now_rfc3339

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
    """A System 1 child's request to its System 3 controller (docs/rules/bargaining.md)."""

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
    """System 3's answer (docs/rules/bargaining.md); ``approved_tokens`` None = no tokens."""

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
class PauseFacts:
    """The pause covering the requester (docs/rules/algedonic.md): maybe on an ancestor."""

    target_node_id: str
    paused_at: datetime
    reason: str
    severity: int = 1
    require_human_confirmation: bool = False


# -- readers of event records ---------------------------------------------------------------------


def event_parts(event: EventRecord) -> tuple[Mapping[str, Any], Mapping[str, str]]:
    payload, metadata = event.get("payload"), event.get("metadata")
    return (
        payload if isinstance(payload, Mapping) else {},
        metadata if isinstance(metadata, Mapping) else {},
    )


def first_text(*values: Any, default: str) -> str:
    return next((value for value in values if isinstance(value, str)), default)


def json_unsigned(value: Any) -> int | None:
    """A JSON non-negative integer (not a bool, not a float), else None."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def text_unsigned(value: str | None) -> int | None:
    return int(value) if value is not None and _UNSIGNED.fullmatch(value) else None


def bool_text(value: bool) -> str:
    return "true" if value else "false"


def rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("decision time must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")

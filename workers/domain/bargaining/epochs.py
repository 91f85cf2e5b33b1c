"""Epochs, budgets and what a requester used of them (docs/rules/bargaining.md, "Epochs")."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from organization.genome import OrganizationalGenome, VsmChannelType, channels_between
from workers.domain.bargaining.records import (
    DECISION_EVENT_KIND,
    DEFAULT_EPOCH_SECONDS,
    AllocationStatus,
    EventRecord,
    event_parts,
    json_unsigned,
    text_unsigned,
)


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
    """The smallest budgets over ResourceBargaining channels joining the two, either way round.

    Through the genome's channel index (``channels_between``): a grant costs the edge's few
    channels, not the organization's 50,000 at 10,000 nodes."""
    channels = [
        channel
        for channel in channels_between(genome, controller_id, requester_id)
        if channel.channel_type is VsmChannelType.RESOURCE_BARGAINING
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
        payload, metadata = event_parts(event)
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
        granted = text_unsigned(metadata.get("resource_epoch_approved_tokens"))
        if granted is None:
            granted = json_unsigned(payload.get("approved_tokens"))
        tokens += granted or 0
    return EpochUsage(allocation_count=count, allocated_tokens=tokens)

"""One controller handling one envelope: its context and the events it will append."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ledger.services import EventDraft, ledger_append_many
from organization.genome import ChannelPriority, OrganizationalGenome, VsmChannelType
from organization.models import GenomeVersion
from workers.domain.messages import MessageEnvelope, RiskClass, TaskPacket
from workers.services.transport import ancestors_of, envelope_publish

# Channels a routed task keeps (docs/rules/routing.md, "Outbound channel").
KEEP_CHANNEL = {
    VsmChannelType.COMMAND,
    VsmChannelType.SYSTEM2_COORDINATION,
    VsmChannelType.AUDIT,
    VsmChannelType.THREE_FOUR_HOMEOSTAT,
    VsmChannelType.MANAGEMENT_TO_OPERATION,
    VsmChannelType.OPERATION_TO_OPERATION,
    VsmChannelType.ALGEDONIC,
}
RISK_PRIORITY = {
    RiskClass.LOW: ChannelPriority.NORMAL,
    RiskClass.MEDIUM: ChannelPriority.NORMAL,
    RiskClass.HIGH: ChannelPriority.HIGH,
    RiskClass.CRITICAL: ChannelPriority.CRITICAL,
}


# Relayed on outbound envelopes (docs/rules/routing.md, "Relayed metadata families").
RELAYED_PREFIXES = ("command_", "handoff_", "management_", "coordination_")
RAISED_TO_HIGH = {
    VsmChannelType.SYSTEM2_COORDINATION,
    VsmChannelType.AUDIT,
    VsmChannelType.THREE_FOUR_HOMEOSTAT,
}


def outbound_priority(task: TaskPacket, incoming: VsmChannelType) -> ChannelPriority:
    """Base priority from risk, raised by the incoming channel (docs/rules/routing.md)."""
    base = RISK_PRIORITY[task.risk]
    if incoming is VsmChannelType.ALGEDONIC:
        return ChannelPriority.INTERRUPT
    if incoming is VsmChannelType.COMMAND:
        if task.metadata.get("command_non_negotiable") == "true" or task.risk is RiskClass.CRITICAL:
            return ChannelPriority.CRITICAL
        return max(base, ChannelPriority.HIGH, key=lambda p: p.rank)
    if incoming in RAISED_TO_HIGH:
        return max(base, ChannelPriority.HIGH, key=lambda p: p.rank)
    return base


@dataclass
class Handling:
    """What one controller is doing with one envelope: context plus pending events."""

    node_id: str
    genome: OrganizationalGenome
    version: GenomeVersion
    incoming: MessageEnvelope
    events: list[EventDraft] = field(default_factory=list)

    def event(self, kind: str, payload: dict[str, Any], **ids: Any) -> None:
        self.events.append(
            EventDraft(
                kind=kind,
                actor=f"node:{self.node_id}",
                payload=payload,
                node_id=self.node_id,
                responsible_ancestor_ids=ancestors_of(self.genome, self.node_id),
                correlation_id=self.incoming.correlation_id or self.incoming.id,
                causation_id=self.incoming.id,
                genome_id=self.version.id,
                **ids,
            )
        )

    def publish(self, envelope: MessageEnvelope, **ids: Any) -> None:
        envelope_publish(envelope=envelope, genome=self.genome, events=self.events, **ids)
        self.events = []

    def flush(self) -> None:
        ledger_append_many(drafts=self.events)
        self.events = []

    @property
    def correlation_id(self) -> str:
        return self.incoming.correlation_id or self.incoming.id

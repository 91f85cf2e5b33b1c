"""Issuing commands on the Command channel (docs/rules/channels.md, "Command channel")."""

from __future__ import annotations

from ledger import kinds
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import ChannelPriority, VsmChannelType
from organization.selectors import champion_genome
from workers.domain.commands import Command, command_risk
from workers.domain.messages import MessageEnvelope, PayloadType, to_json
from workers.errors import NoOrganization, Rejected
from workers.models import Directive
from workers.services.transport import envelope_publish


def command_issue(*, command: Command, actor: str) -> Directive:
    """Send ``command`` to the controller of its target; tracked as a directive of its own.

    The controller that receives it is the target's parent, which must be
    ``command.issued_by``. Raises Rejected naming the bad field.
    """
    genome = champion_genome()
    if genome is None:
        raise NoOrganization()
    target = genome.nodes.get(command.target)
    if target is None:
        raise Rejected({"target": [f"No node is called {command.target!r}."]})
    if target.parent_id is None or target.parent_id != command.issued_by:
        raise Rejected(
            {"issued_by": [f"Only {command.target!r}'s parent ({target.parent_id}) commands it."]}
        )
    with ledger_batch():
        directive = Directive.objects.create(
            title=command.title,
            body=command.body,
            risk=command_risk(command).value,
            metadata={"command_target_node_id": command.target},
            origin="command",
            root_node_id=genome.root_node_id,
            genome_id=genome.id,
        )
        command.metadata = {**command.metadata, "directive_id": directive.id}
        ledger_record(
            EventDraft(
                kind=kinds.DIRECTIVE_ACCEPTED,
                actor=actor,
                payload={"command": to_json(command)},
                node_id=command.issued_by,
                directive_id=directive.id,
                correlation_id=directive.id,
                genome_id=genome.id,
            )
        )
        envelope_publish(
            envelope=MessageEnvelope(
                channel_type=VsmChannelType.COMMAND,
                source_node_id=command.issued_by,
                target_node_id=command.issued_by,
                correlation_id=directive.id,
                priority=ChannelPriority.CRITICAL
                if command.non_negotiable
                else ChannelPriority.HIGH,
                payload_type=PayloadType.COMMAND,
                payload=to_json(command),
            ),
            genome=genome,
            directive_id=directive.id,
        )
    return directive

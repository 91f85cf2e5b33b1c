"""Publishing envelopes: a durable row, a ledger event, then a Celery message on commit.

Celery carries only the envelope id. Controllers (metasystems) listen on queue
``controllers``, leaves on ``leaves``; with ``VSM_LEAF_QUEUES=per-node`` each
leaf gets its own queue ``leaf.<node id>`` so a machine can serve chosen leaves.
"""

from __future__ import annotations

import os
from typing import Any

from django.db import transaction

from ledger import kinds
from ledger.services import EventDraft, ledger_append_many
from organization.genome import OrganizationalGenome, ancestor_ids
from workers.domain.messages import MessageEnvelope, PayloadType, to_json
from workers.models import Envelope

CONTROLLER_QUEUE = "controllers"
LEAF_QUEUE = "leaves"


def queue_for(genome: OrganizationalGenome, node_id: str, payload_type: str) -> str:
    """Leaves execute task packets; everything else is a controller's business."""
    node = genome.nodes[node_id]
    if node.children or payload_type != PayloadType.TASK_PACKET:
        return CONTROLLER_QUEUE
    if os.environ.get("VSM_LEAF_QUEUES", "shared") == "per-node":
        return f"leaf.{node_id}"
    return LEAF_QUEUE


def ancestors_of(genome: OrganizationalGenome, node_id: str | None) -> list[str]:
    if node_id is None or node_id not in genome.nodes:
        return []
    return ancestor_ids(genome, node_id)


def message_event(
    kind: str, envelope: MessageEnvelope, genome: OrganizationalGenome, **ids: Any
) -> EventDraft:
    """An event for a message carries the envelope (docs/rules/ledger.md, "Events for messages")."""
    node_id = envelope.target_node_id or envelope.source_node_id
    return EventDraft(
        kind=kind,
        actor=f"node:{envelope.source_node_id or 'environment'}",
        payload=to_json(envelope),
        node_id=node_id,
        responsible_ancestor_ids=ancestors_of(genome, node_id),
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        genome_id=genome.id,
        **ids,
    )


def envelope_publish(
    *,
    envelope: MessageEnvelope,
    genome: OrganizationalGenome,
    events: list[EventDraft] | None = None,
    **ids: Any,
) -> Envelope:
    """Store ``envelope``, record it (after ``events``), and send it once committed."""
    from workers.tasks import deliver

    assert envelope.target_node_id is not None, "envelopes between nodes name their target"
    queue = queue_for(genome, envelope.target_node_id, envelope.payload_type)
    wire = to_json(envelope)
    row = Envelope.objects.create(
        id=envelope.id,
        channel_type=wire["channel_type"],
        source_node_id=envelope.source_node_id,
        target_node_id=envelope.target_node_id,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        priority=wire["priority"],
        payload_type=envelope.payload_type,
        payload=wire["payload"],
        trace=wire["trace"],
        metadata=wire["metadata"],
        queue=queue,
    )
    ledger_append_many(
        drafts=[*(events or []), message_event(kinds.MESSAGE_PUBLISHED, envelope, genome, **ids)]
    )
    transaction.on_commit(lambda: deliver.apply_async(args=[row.id], queue=queue))
    return row


def envelope_of(row: Envelope) -> MessageEnvelope:
    from workers.domain.messages import from_json

    return from_json(
        MessageEnvelope,
        {
            "id": row.id,
            "channel_type": row.channel_type,
            "source_node_id": row.source_node_id,
            "target_node_id": row.target_node_id,
            "correlation_id": row.correlation_id,
            "causation_id": row.causation_id,
            "priority": row.priority,
            "created_at": row.created_at.isoformat() if row.created_at else None,
            "payload_type": row.payload_type,
            "payload": row.payload,
            "trace": row.trace,
            "metadata": row.metadata,
        },
    )

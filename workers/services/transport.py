"""Publishing envelopes: a durable row and its ledger event now, a Celery message on commit.

Celery carries only the envelope id, sent by task name (``vsm.deliver``): publishing
never imports the handlers. Controllers (metasystems) listen on queue ``controllers``,
leaves on ``leaves``; with ``VSM_LEAF_QUEUES=per-node`` each leaf gets its own queue
``leaf.<node id>`` so a machine can serve chosen leaves.

Every envelope names the genome version its routing decision was made under
(``genome_id``); its handler loads that version, never "the current champion", so a
patch applied while a directive is in flight does not change the rules under it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from ledger import kinds
from ledger.services import ledger_batch_insert, ledger_record
from organization.genome import OrganizationalGenome
from organization.selectors import champion_version_id, genome_version
from workers import events
from workers.domain.messages import MessageEnvelope, PayloadType, from_json, to_json
from workers.models import Envelope

CONTROLLER_QUEUE = "controllers"
LEAF_QUEUE = "leaves"
DELIVER_TASK = "vsm.deliver"

logger = logging.getLogger(__name__)

# Set while a worker runs a hop whose onward hops it may run itself (``local_deliveries``):
# the controller envelopes committed meanwhile are collected here instead of being sent.
_collector: ContextVar[list[str] | None] = ContextVar("vsm_local_deliveries", default=None)


def queue_for(genome: OrganizationalGenome, node_id: str, payload_type: str) -> str:
    """Leaves execute task packets; everything else is a controller's business."""
    node = genome.nodes[node_id]
    if node.children or payload_type != PayloadType.TASK_PACKET:
        return CONTROLLER_QUEUE
    if settings.VSM_LEAF_QUEUES == "per-node":
        return f"leaf.{node_id}"
    return LEAF_QUEUE


def envelope_publish(
    *, envelope: MessageEnvelope, genome: OrganizationalGenome, **ids: Any
) -> Envelope:
    """Store ``envelope`` under ``genome``'s version, record it, and send it once committed.

    A send that fails after the commit leaves the envelope waiting for the outbox sweeper;
    the caller's work stands."""
    assert envelope.target_node_id is not None, "envelopes between nodes name their target"
    queue = queue_for(genome, envelope.target_node_id, envelope.payload_type)
    wire = to_json(envelope)
    row = Envelope(
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
        genome_id=genome.id,
    )
    # Written with the hop's ledger append (one statement on PostgreSQL): nothing in a hop
    # reads back an envelope it sends.
    ledger_batch_insert(row)
    ledger_record(events.message_event(kinds.MESSAGE_PUBLISHED, envelope, genome, wire=wire, **ids))
    transaction.on_commit(lambda: send_committed(envelope_id=row.id, queue=queue))
    return row


def envelope_send(*, envelope_id: str, queue: str) -> None:
    """Hand the envelope's id to the broker (again, for a resend: handlers dedupe)."""
    current_app.send_task(DELIVER_TASK, args=[envelope_id, queue], queue=queue)


@contextmanager
def local_deliveries() -> Iterator[list[str]]:
    """Collect, instead of sending, the ids of the controller envelopes committed inside
    the block, in the order they were published; the caller handles or sends them
    (``workers.services.delivery.envelope_deliver_onward``). Envelopes for leaves are sent
    as always."""
    collected: list[str] = []
    token = _collector.set(collected)
    try:
        yield collected
    finally:
        _collector.reset(token)


def send_committed(*, envelope_id: str, queue: str) -> None:
    """Send a committed envelope. The work is committed already, so a broker that is down
    must not fail the caller (an API request would answer 500 for a directive it stored):
    the envelope is marked due and the outbox sweeper (``workers.services.outbox``) sends
    it once the broker is back. Inside ``local_deliveries`` a controller envelope is
    collected instead."""
    collected = _collector.get()
    if collected is not None and queue == CONTROLLER_QUEUE:
        collected.append(envelope_id)
        return
    try:
        envelope_send(envelope_id=envelope_id, queue=queue)
    except Exception:
        logger.exception(
            "sending envelope %s to %s failed; it waits for the outbox sweeper", envelope_id, queue
        )
        envelope_mark_unsent(envelope_id)


def envelope_mark_unsent(envelope_id: str) -> None:
    """Make an unhandled envelope due for the sweeper now: its send failed."""
    try:
        Envelope.objects.filter(id=envelope_id, handled_at__isnull=True).update(
            resend_after=timezone.now()
        )
    except DatabaseError:
        # Still unhandled, so the sweeper finds it after its grace period anyway.
        logger.exception("could not mark envelope %s as waiting to be sent", envelope_id)


def routed_genome(version_id: str | None) -> OrganizationalGenome:
    """The genome a piece of work (an envelope, a held or deferred task) was routed under;
    rows from before versions were recorded fall back to the champion's."""
    version_id = version_id or champion_version_id()
    assert version_id is not None, "work exists, so the organization does"
    return genome_version(version_id=version_id)


def envelope_genome(row: Envelope) -> OrganizationalGenome:
    return routed_genome(row.genome_id)


def envelope_of(row: Envelope) -> MessageEnvelope:
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

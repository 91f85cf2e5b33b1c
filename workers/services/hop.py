"""One hop: a node handling one delivered envelope, under the genome version it names.

A hop reads its envelope once, claims it in the transaction that holds every effect
of the handling, and records its events into that transaction's single ledger append
(``ledger.services.ledger_batch``). Everything it sends goes out under the same genome
version, so the rules never change under a directive in flight.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from ledger.compiled import READINGS
from ledger.services import EventDraft, ledger_record
from organization.genome import OrganizationalGenome
from organization.models import SubtreePause
from workers.domain.messages import MessageEnvelope
from workers.events import Event, ancestors_of
from workers.models import Envelope
from workers.services.transport import envelope_genome, envelope_of, envelope_publish

logger = logging.getLogger(__name__)


@dataclass
class Hop:
    """Who is handling which envelope, under which genome."""

    node_id: str
    genome: OrganizationalGenome
    incoming: MessageEnvelope
    # False when no subtree anywhere was paused as the envelope was read (the usual case):
    # then pause checks need no read. A pause this hop applies sets it back.
    pauses_exist: bool = True

    @property
    def correlation_id(self) -> str:
        return self.incoming.correlation_id or self.incoming.id

    @property
    def parent_id(self) -> str | None:
        return self.genome.nodes[self.node_id].parent_id

    def record(self, event: Event) -> None:
        """Record ``event`` as this node's, in this hop's ledger append."""
        ledger_record(
            EventDraft(
                kind=event.kind,
                actor=f"node:{self.node_id}",
                payload=event.payload,
                node_id=self.node_id,
                responsible_ancestor_ids=ancestors_of(self.genome, self.node_id),
                correlation_id=self.correlation_id,
                causation_id=self.incoming.id,
                genome_id=self.genome.id,
                task_id=event.task_id,
                directive_id=event.directive_id,
                trial_id=event.trial_id,
                suggestion_id=event.suggestion_id,
            )
        )

    def event_context(self) -> EventDraft:
        """The tags of an event this node records in a service of an app above (kind and
        payload filled in there)."""
        return EventDraft(
            kind="",
            actor=f"node:{self.node_id}",
            node_id=self.node_id,
            responsible_ancestor_ids=ancestors_of(self.genome, self.node_id),
            correlation_id=self.correlation_id,
            causation_id=self.incoming.id,
            genome_id=self.genome.id,
        )

    def event(self, kind: str, payload: dict[str, Any], **ids: Any) -> None:
        self.record(Event(kind, payload, **ids))

    def publish(self, envelope: MessageEnvelope, **ids: Any) -> Envelope:
        """Send ``envelope`` under this hop's genome version."""
        return envelope_publish(envelope=envelope, genome=self.genome, **ids)

    def reply(self, envelope: MessageEnvelope, *, trace_self: bool = True, **ids: Any) -> Envelope:
        """Send an envelope caused by the incoming one (correlation, causation, trace)."""
        envelope.source_node_id = envelope.source_node_id or self.node_id
        envelope.correlation_id = envelope.correlation_id or self.correlation_id
        envelope.causation_id = self.incoming.id
        envelope.trace = [*self.incoming.trace, self.node_id] if trace_self else envelope.trace
        return self.publish(envelope, **ids)


@dataclass(frozen=True)
class Delivery:
    """An envelope as its handler first reads it: the row, the message, the genome."""

    row: Envelope
    incoming: MessageEnvelope
    genome: OrganizationalGenome
    pauses_exist: bool = True

    @property
    def node_id(self) -> str:
        return str(self.row.target_node_id)

    def hop(self) -> Hop:
        return Hop(self.node_id, self.genome, self.incoming, self.pauses_exist)


def delivery_claim(envelope_id: str, *, worker: str) -> Delivery | str:
    """Claim the envelope and read it in one statement (``UPDATE … RETURNING``), inside the
    caller's transaction: the delivery to handle, or why there is none ("missing",
    "duplicate"). For handlers with nothing to do before their transaction (controllers)."""
    return _unhandled_returning(
        envelope_id,
        "handled_at = %s, handled_by = %s, deliveries = deliveries + 1",
        [_stored(timezone.now()), worker],
    )


def delivery_lease(envelope_id: str, *, seconds: int) -> Delivery | str:
    """Read an unhandled envelope and lease it for ``seconds`` in one statement: the outbox
    sweeper leaves it alone until then (``workers.services.outbox.envelope_lease``). For a
    leaf, whose provider runs before its transaction; "missing" or "duplicate" as above."""
    return _unhandled_returning(
        envelope_id, "resend_after = %s", [_stored(timezone.now() + timedelta(seconds=seconds))]
    )


def _stored(moment: datetime) -> Any:
    """A timestamp as Django stores it (on SQLite: UTC text without an offset)."""
    return connection.ops.adapt_datetimefield_value(moment)


def _unhandled_returning(envelope_id: str, assignments: str, params: list[Any]) -> Delivery | str:
    """The statement also says whether any subtree is paused, so a hop with none anywhere
    reads no pauses (``workers.services.algedonic.paused``)."""
    table = Envelope._meta.db_table
    quote = connection.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in Envelope._meta.concrete_fields)
    pauses = quote(SubtreePause._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(table)} SET {assignments} WHERE id = %s AND handled_at IS NULL "
            f"RETURNING {columns}, EXISTS (SELECT 1 FROM {pauses})",
            [*params, envelope_id],
        )
        fetched = cursor.fetchall()
    if not fetched:
        if Envelope.objects.filter(id=envelope_id).exists():
            return "duplicate"
        logger.error("envelope %s does not exist; dropping its delivery", envelope_id)
        return "missing"
    # Converted as the model's queryset converts its columns, with the converters Django
    # chose once (ledger/compiled.py): a raw queryset chose them again on every claim.
    envelopes = READINGS.whole_rows(Envelope, connection.alias)
    [converted] = envelopes.converted(fetched)
    [row] = envelopes.instances_of([converted])
    pauses_exist = bool(converted[-1])
    return Delivery(row, envelope_of(row), envelope_genome(row), pauses_exist)


def envelope_claim(envelope_id: str, *, worker: str) -> bool:
    """Mark the envelope handled, inside the caller's transaction; False if another
    delivery claimed it first (then the caller must do nothing)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Envelope._meta.db_table} SET handled_at = %s, handled_by = %s, "
            "deliveries = deliveries + 1 WHERE id = %s AND handled_at IS NULL",
            [_stored(timezone.now()), worker, envelope_id],
        )
        return bool(cursor.rowcount == 1)

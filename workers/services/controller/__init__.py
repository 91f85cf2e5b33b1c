"""The metasystem runtime: map directives, route tasks, observe and forward results.

Each delivered envelope is one hop (``workers.services.hop``): read once, then one
transaction that claims it (``handled_at``) and holds every effect of the handling
(task rows, new envelopes, a single ledger append), all under the genome version the
envelope names. A redelivery after a crash redoes the work from scratch; a duplicate
delivery finds the envelope claimed and does nothing.

Layout: :mod:`.intake` turns directives and commands into tasks, :mod:`.routing` sends
a task to a child (pause, grant, publish), :mod:`.results` observes results, revises,
forwards them up and settles directives, :mod:`.channels` the other channels' messages, and
:mod:`.audit_reports` hands System 3* audit reports to the trials app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ledger import kinds
from ledger.services import ledger_batch, ledger_record
from workers import events
from workers.domain.algedonic import AlgedonicSignal
from workers.domain.commands import Command
from workers.domain.lineage import annotate_from_incoming
from workers.domain.messages import PayloadType, TaskPacket, TaskResult, from_json
from workers.services.algedonic import on_algedonic_signal
from workers.services.controller.audit_reports import on_audit_report
from workers.services.controller.channels import (
    on_bargain,
    on_coordination,
    on_environment,
    on_handoff,
    on_homeostat,
    on_management,
)
from workers.services.controller.intake import on_command, on_directive
from workers.services.controller.results import on_result
from workers.services.controller.routing import on_task_packet
from workers.services.hop import Hop, delivery_claim

logger = logging.getLogger(__name__)

__all__ = ["controller_receive"]


def _on_algedonic(hop: Hop) -> None:
    on_algedonic_signal(hop, from_json(AlgedonicSignal, hop.incoming.payload))


def _on_command(hop: Hop) -> None:
    on_command(hop, from_json(Command, hop.incoming.payload))


def _on_result(hop: Hop) -> None:
    on_result(hop, from_json(TaskResult, hop.incoming.payload))


def _on_task(hop: Hop) -> None:
    task = from_json(TaskPacket, hop.incoming.payload)
    if hop.incoming.source_node_id != hop.node_id:
        # A task sent back to itself (released after a pause or deferral) keeps its stamp.
        task = annotate_from_incoming(task, hop.incoming, controller_node_id=hop.node_id)
    on_task_packet(hop, task)


HANDLERS: dict[str, Callable[[Hop], None]] = {
    PayloadType.DIRECTIVE: on_directive,
    PayloadType.TASK_PACKET: _on_task,
    PayloadType.ALGEDONIC_SIGNAL: _on_algedonic,
    PayloadType.COMMAND: _on_command,
    PayloadType.TASK_RESULT: _on_result,
    PayloadType.SYSTEM2_COORDINATION_SIGNAL: on_coordination,
    PayloadType.OPERATION_HANDOFF: on_handoff,
    PayloadType.MANAGEMENT_OPERATION_DIRECTIVE: on_management,
    PayloadType.ENVIRONMENT_SIGNAL: on_environment,
    PayloadType.THREE_FOUR_HOMEOSTAT_SIGNAL: on_homeostat,
    PayloadType.RESOURCE_BARGAIN: on_bargain,
    PayloadType.AUDIT_REPORT: on_audit_report,
}


def controller_receive(*, envelope_id: str, worker: str) -> str:
    """Handle one envelope delivered to a metasystem; returns what happened.

    One transaction: the claim reads the envelope, the handling writes its effects and
    the batch appends its events.
    """
    with ledger_batch():
        delivery = delivery_claim(envelope_id, worker=worker)
        if isinstance(delivery, str):
            return delivery
        hop = delivery.hop()
        ledger_record(events.message_event(kinds.MESSAGE_RECEIVED, hop.incoming, hop.genome))
        handler = HANDLERS.get(hop.incoming.payload_type)
        if handler is None:
            logger.warning("controller %s ignores %s", hop.node_id, hop.incoming.payload_type)
        else:
            handler(hop)
    return "handled"

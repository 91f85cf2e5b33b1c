"""Delivering an envelope to its node: the one entry point of the ``vsm.deliver`` task."""

from __future__ import annotations

from workers.services.controller import controller_handle
from workers.services.hop import delivery_read
from workers.services.leaf import leaf_handle
from workers.services.transport import CONTROLLER_QUEUE


def envelope_deliver(*, envelope_id: str, worker: str) -> str:
    """Read the envelope once and hand it to its metasystem's controller or leaf's harness.

    Returns what happened: "handled", "held", "duplicate" or "missing".
    """
    delivery = delivery_read(envelope_id)
    if isinstance(delivery, str):
        return delivery
    if delivery.row.queue == CONTROLLER_QUEUE:
        return controller_handle(delivery, worker=worker)
    return leaf_handle(delivery, worker=worker)

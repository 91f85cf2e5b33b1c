"""Delivering an envelope to its node: the one entry point of the ``vsm.deliver`` task."""

from __future__ import annotations

from workers.models import Envelope
from workers.services.controller import controller_receive
from workers.services.leaf import leaf_execute
from workers.services.transport import CONTROLLER_QUEUE


def envelope_deliver(*, envelope_id: str, worker: str, queue: str | None = None) -> str:
    """Hand the envelope to its metasystem's controller or its leaf's harness.

    ``queue`` is the one the message was sent on (messages from before it travelled: read
    from the row). Each handler reads the envelope itself, once: a leaf before its
    provider runs, a controller as it claims it. Returns what happened: "handled", "held",
    "duplicate", "superseded" (leaf: a newer delivery runs the task) or "missing".
    """
    if queue is None:
        queue = Envelope.objects.filter(id=envelope_id).values_list("queue", flat=True).first()
    if queue is None or queue == CONTROLLER_QUEUE:
        return controller_receive(envelope_id=envelope_id, worker=worker)
    return leaf_execute(envelope_id=envelope_id, worker=worker)

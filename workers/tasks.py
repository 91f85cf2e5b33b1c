"""Celery tasks of the workers app: thin edges that call services."""

from __future__ import annotations

import hashlib

from celery import shared_task

from workers.models import Envelope


@shared_task(name="vsm.deliver", bind=True)
def deliver(self, envelope_id: str) -> str:  # type: ignore[no-untyped-def]
    """Hand an envelope to its target node: a metasystem's controller or a leaf's harness.

    Delivery is at least once (acks late); both handlers dedupe by envelope id.
    """
    # Imported here so that publishing (in the web process) never loads the harness.
    from workers.services.controller import controller_receive
    from workers.services.leaf import leaf_execute
    from workers.services.transport import CONTROLLER_QUEUE

    worker = str(self.request.hostname or "unknown")
    queue = Envelope.objects.filter(id=envelope_id).values_list("queue", flat=True).first()
    if queue == CONTROLLER_QUEUE:
        return controller_receive(envelope_id=envelope_id, worker=worker)
    return leaf_execute(envelope_id=envelope_id, worker=worker)


@shared_task(name="vsm.diagnostics.digest")
def diagnostics_digest(payload: str) -> str:
    """Return the sha256 of ``payload``: a round trip that proves a worker is alive.

    Also what the embedded-broker soak test uses to show that no message is
    lost or corrupted on the way.
    """
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()

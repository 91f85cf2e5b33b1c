"""Delivering an envelope to its node: the one entry point of the ``vsm.deliver`` task.

A hop usually sends one controller hop next (the root routes to a system, a leaf's result
goes to its system, a system relays it to the root). Going through the broker for it would
only add a round trip, so a worker that serves the controllers runs that next hop itself,
in its own transaction exactly as if it had come through the broker
(``envelope_deliver_onward``). The envelope row is durable before it is handled either way,
so a worker that dies in between loses nothing: the outbox sweeper sends it. Leaves' work
always goes through the broker, to the workers that serve the leaf's queue.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings

from workers.models import Envelope
from workers.services.controller import controller_receive
from workers.services.leaf import leaf_execute
from workers.services.transport import CONTROLLER_QUEUE, local_deliveries, send_committed

logger = logging.getLogger(__name__)


def envelope_deliver(*, envelope_id: str, worker: str, queue: str | None = None) -> str:
    """Hand the envelope to its metasystem's controller or its leaf's harness: one hop.

    ``queue`` is the one the message was sent on (messages from before it travelled: read
    from the row). Each handler reads the envelope itself, once: a leaf before its
    provider runs, a controller as it claims it. Returns what happened: "handled", "held",
    "duplicate", "superseded" (leaf: a newer delivery runs the task) or "missing".
    """
    if queue is None:
        queue = _queue_of(envelope_id)
    if queue == CONTROLLER_QUEUE:
        return controller_receive(envelope_id=envelope_id, worker=worker)
    return leaf_execute(envelope_id=envelope_id, worker=worker)


def envelope_deliver_onward(
    *, envelope_id: str, worker: str, queue: str | None = None, serves_controllers: bool = False
) -> str:
    """Deliver the envelope, then the controller hops that follow from it, in this worker.

    After each hop the first controller envelope it sent is handled here next, up to
    ``VSM_LOCAL_CONTROLLER_HOPS`` in a row (0: every hop through the broker); any others
    it sent go through the broker at once, so a fan-out still spreads over the workers.
    After a leaf's hop, only in a worker that ``serves_controllers`` (consumes their
    queue): a leaf-only machine never runs a metasystem's hop. The first hop's errors
    propagate (the task retries it); an onward hop that fails is logged and sent through
    the broker, where it is retried like any delivery. A redelivery of a hop already
    handled takes up the controller envelopes it caused, hop after hop, left unhandled (the
    worker died mid-chain): here, or through the broker in a worker that runs no controller
    hop onward. Returns what happened to the first envelope.
    """
    if queue is None:
        queue = _queue_of(envelope_id)
    limit = settings.VSM_LOCAL_CONTROLLER_HOPS
    if limit <= 0 or not (queue == CONTROLLER_QUEUE or serves_controllers):
        outcome = envelope_deliver(envelope_id=envelope_id, worker=worker, queue=queue)
        if outcome == "duplicate":
            # A redelivery, and this worker runs no controller hop onward: send what the
            # dead worker left unsent through the broker, to the workers that serve them.
            _send_through_broker(_left_unhandled(envelope_id))
        return outcome
    with local_deliveries() as sent:
        outcome = envelope_deliver(envelope_id=envelope_id, worker=worker, queue=queue)
    if outcome == "duplicate":
        # A redelivery (a worker died after the hop committed, before it acknowledged): the
        # onward hops it had yet to run died with it; take them up now rather than leave
        # them to the outbox sweeper's grace period.
        sent = _left_unhandled(envelope_id)
    onward = 0
    while sent:
        following, rest = sent[0], sent[1:]
        _send_through_broker(rest)
        if onward == limit:
            _send_through_broker([following])
            break
        onward += 1
        try:
            with local_deliveries() as sent:
                controller_receive(envelope_id=following, worker=worker)
        except Exception:
            logger.exception(
                "handling envelope %s onward in %s failed; sending it through the broker",
                following,
                worker,
            )
            # Its transaction rolled back, so nothing it would have sent was committed.
            _send_through_broker([following])
            break
    return outcome


def _left_unhandled(envelope_id: str) -> list[str]:
    """The controller envelopes that a worker which died mid-chain left unhandled: those
    caused, hop after hop, by ``envelope_id``'s, found by walking the causation down from
    it through the controller envelopes already handled (the chain it ran onward), oldest
    first. Unlike the work's correlation, this also finds an envelope of other work that
    the chain sent first (a leaf's pain signal). One in flight through the broker meanwhile
    is harmless here: the first claim wins."""
    found: list[tuple[datetime, str]] = []
    frontier = [envelope_id]
    for _ in range(settings.VSM_LOCAL_CONTROLLER_HOPS + 1):  # a chain is at most that long
        rows = Envelope.objects.filter(
            causation_id__in=frontier, queue=CONTROLLER_QUEUE
        ).values_list("id", "handled_at", "created_at")
        frontier = []
        for id_, handled_at, created_at in rows:
            if handled_at is None:
                found.append((created_at, id_))
            else:
                frontier.append(id_)
        if not frontier:
            break
    return [id_ for _, id_ in sorted(found)]


def _queue_of(envelope_id: str) -> str:
    """The queue an envelope went out on; a missing one is the controller's to report."""
    queue = Envelope.objects.filter(id=envelope_id).values_list("queue", flat=True).first()
    return queue or CONTROLLER_QUEUE


def _send_through_broker(envelope_ids: list[str]) -> None:
    for envelope_id in envelope_ids:
        send_committed(envelope_id=envelope_id, queue=CONTROLLER_QUEUE)

"""The outbox: committed envelopes whose Celery message may have been lost are sent again.

An envelope row commits with the work that made it; its message goes to the broker only
after the commit (``workers.services.transport``). Between the two a process can die, the
broker can be down, or a broker without persistence can restart and forget what it held.
The row stays, unhandled: the sweeper sends every such envelope again once it is older than
the grace period (``VSM_OUTBOX_GRACE_SECONDS``). That is safe because every handler claims
its envelope by id in the transaction that holds its effects: a second message for an
envelope already handled answers "duplicate" and does nothing.

Each resend is claimed first (``UPDATE … WHERE resend_after`` is what was read, one row
changed), so two sweepers running at once never both send it, and it pushes
``resend_after`` forward with a doubling backoff: an envelope still queued behind a long
backlog gets one extra message per period, not one per sweep. A leaf that starts a task
pushes ``resend_after`` past the task's hard time limit (its lease): nothing is resent
while its provider may still be running, and it is resent once the lease runs out if the
leaf died.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from workers.models import Envelope
from workers.services import transport

logger = logging.getLogger(__name__)

# The backoff between resends of one envelope doubles up to this many grace periods.
MAX_BACKOFF_FACTOR = 32
DEFAULT_BATCH = 500


def grace_period() -> timedelta:
    return timedelta(seconds=settings.VSM_OUTBOX_GRACE_SECONDS)


def envelopes_due(*, now: datetime | None = None) -> Q:
    """Unhandled envelopes the sweeper would send again at ``now``."""
    now = now or timezone.now()
    return Q(handled_at__isnull=True) & (
        Q(resend_after__isnull=True, created_at__lte=now - grace_period())
        | Q(resend_after__lte=now)
    )


@dataclass
class Sweep:
    """What one run of the sweeper did."""

    sent: list[str] = field(default_factory=list)
    failed: str | None = None

    def __str__(self) -> str:
        if self.failed:
            return f"sent {len(self.sent)} envelope(s) again, then stopped: {self.failed}"
        return f"sent {len(self.sent)} envelope(s) again"


def outbox_sweep(*, now: datetime | None = None, limit: int = DEFAULT_BATCH) -> Sweep:
    """Send again every unhandled envelope past its grace period, oldest first.

    Each envelope is claimed (its ``resend_after`` moved on, ``resends`` counted) before its
    message goes out, so concurrent sweeps send it once. A send that fails (the broker is
    down) makes the envelope due again at once and ends the sweep: the next run tries again.
    At most ``limit`` envelopes per run.
    """
    now = now or timezone.now()
    sweep = Sweep()
    due = (
        Envelope.objects.filter(envelopes_due(now=now))
        .order_by("created_at")
        .values_list("id", "queue", "resend_after", "resends")[:limit]
    )
    for envelope_id, queue, resend_after, resends in due:
        backoff = grace_period() * min(2**resends, MAX_BACKOFF_FACTOR)
        claimed = Envelope.objects.filter(
            id=envelope_id, handled_at__isnull=True, resend_after=resend_after, resends=resends
        ).update(resend_after=now + backoff, resends=F("resends") + 1)
        if claimed != 1:
            continue  # handled meanwhile, or another sweep took it
        try:
            transport.envelope_send(envelope_id=envelope_id, queue=queue)
        except Exception as error:
            logger.exception("outbox: sending envelope %s to %s failed", envelope_id, queue)
            transport.envelope_mark_unsent(envelope_id)
            sweep.failed = f"{type(error).__name__}: {error}"
            break
        sweep.sent.append(envelope_id)
    if sweep.sent or sweep.failed:
        logger.info("outbox: %s", sweep)
    return sweep


def envelope_lease(*, envelope_id: str, seconds: int) -> None:
    """Hold an unhandled envelope for ``seconds``: the sweeper leaves it alone until then
    (a leaf about to run its provider, which may take minutes)."""
    Envelope.objects.filter(id=envelope_id, handled_at__isnull=True).update(
        resend_after=timezone.now() + timedelta(seconds=seconds)
    )

"""Checks of the whole ledger asked for from the dashboard, run by a worker.

``verification_request`` stores a queued ``LedgerVerification`` and, on commit, sends the
``vsm.ledger.verify`` task; ``verification_execute`` (the task's body) walks the ledger with
``ledger_audit``, writing its progress to the row as it goes, and ends it ``ok``, ``broken``
(with what ``ledger_verify`` would print) or ``failed`` (the check itself crashed; logged).
A request is refused while another check is queued or running: one walk at a time. A run
that has not moved for ``STALLED_AFTER`` (no worker took it, or its worker died) is ended
``failed`` saying so, and no longer blocks a new request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ledger.models import LedgerVerification
from ledger.selectors import ledger_head_seq
from ledger.verification import ledger_audit

logger = logging.getLogger(__name__)

PROGRESS_EVERY = 2_000  # events between progress writes: a few per second on a large ledger
STALLED_AFTER = timedelta(minutes=5)


class VerificationBusy(Exception):
    """A check is already queued or running; ``running`` is that one."""

    def __init__(self, running: LedgerVerification) -> None:
        super().__init__(f"a ledger check is already {running.state} ({running.id})")
        self.running = running


def verification_request(*, requested_by: str, send: Callable[[str], None]) -> LedgerVerification:
    """Queue a check; ``send(run_id)`` runs on commit (the caller's task enqueue).

    Raises VerificationBusy while another check is unfinished. A send that fails leaves the
    run ``failed`` with the reason, so the page never waits for a task that was never sent.
    """
    with transaction.atomic():
        running = (
            LedgerVerification.objects.select_for_update()
            .filter(state__in=[LedgerVerification.State.QUEUED, LedgerVerification.State.RUNNING])
            .first()
        )
        if running is not None and timezone.now() - running.updated_at > STALLED_AFTER:
            _end(
                running.id,
                LedgerVerification.State.FAILED,
                f"no progress for {STALLED_AFTER}: no worker took the check, or its worker "
                "stopped (is the worker running? docs/operations.md)",
            )
            running = None
        if running is not None:
            raise VerificationBusy(running)
        run = LedgerVerification.objects.create(
            requested_by=requested_by, events_total=ledger_head_seq()
        )
        transaction.on_commit(lambda: _send(run.id, send))
    return run


def _send(run_id: str, send: Callable[[str], None]) -> None:
    try:
        send(run_id)
    except Exception as error:  # the broker is down: say so on the run, do not wait forever
        logger.exception("could not send ledger check %s", run_id)
        _end(
            run_id,
            LedgerVerification.State.FAILED,
            f"the check could not be sent to a worker: {error}",
        )


def verification_execute(*, run_id: str) -> LedgerVerification:
    """Run the check ``run_id`` names; a run already started or finished is left alone."""
    claimed = LedgerVerification.objects.filter(
        id=run_id, state=LedgerVerification.State.QUEUED
    ).update(
        state=LedgerVerification.State.RUNNING,
        started_at=timezone.now(),
        updated_at=timezone.now(),
    )
    run = LedgerVerification.objects.get(id=run_id)
    if not claimed:
        return run  # a redelivered task: the first delivery owns the run

    def progress(events: int) -> None:
        LedgerVerification.objects.filter(id=run_id).update(
            events_verified=events, updated_at=timezone.now()
        )

    try:
        report = ledger_audit(progress=progress, progress_every=PROGRESS_EVERY)
    except Exception as error:
        logger.exception("ledger check %s failed", run_id)
        state, summary, events, traces = LedgerVerification.State.FAILED, str(error), 0, 0
    else:
        problems = report.problems()
        state = LedgerVerification.State.BROKEN if problems else LedgerVerification.State.OK
        summary = "\n".join(problems) or report.summary()
        events, traces = report.events, report.traces
    _end(run_id, state, summary, events_verified=events, traces_verified=traces)
    run.refresh_from_db()
    return run


def _end(run_id: str, state: str, summary: str, **counts: int) -> None:
    now = timezone.now()
    LedgerVerification.objects.filter(id=run_id).update(
        state=state, summary=summary, finished_at=now, updated_at=now, **counts
    )

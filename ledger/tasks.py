"""Celery tasks of the ledger (thin: an id in, a service call)."""

from __future__ import annotations

from celery import shared_task

from ledger.verification_runs import verification_execute

VERIFY_TASK = "vsm.ledger.verify"


@shared_task(name=VERIFY_TASK)
def verify(run_id: str) -> str:
    return str(verification_execute(run_id=run_id).state)


def verify_send(run_id: str) -> None:
    """Send the check to a worker on the default queue (every worker listens to it)."""
    verify.apply_async(args=[run_id], queue="celery")

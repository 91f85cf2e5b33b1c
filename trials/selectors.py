"""Reads of the trials app."""

from __future__ import annotations

from typing import Any

from ledger import kinds
from ledger.models import LedgerEvent
from trials.models import AuditRun, GeneSuggestion


def audit_completion(*, audit_run: AuditRun) -> dict[str, Any] | None:
    """The ``audit_completed`` payload of a run started by ``audit_run`` (its events carry
    the run's id as their correlation id), or None if it never completed."""
    event = (
        LedgerEvent.objects.filter(kind=kinds.AUDIT_COMPLETED, correlation_id=audit_run.id)
        .only("payload")
        .first()
    )
    return None if event is None else dict(event.payload)


def audit_suggestions(*, audit_run: AuditRun) -> list[GeneSuggestion]:
    """The suggestions an audit queued, oldest first."""
    return list(audit_run.suggestions.order_by("created_at", "id"))

"""A gene suggestion in, a queued trial out (docs/rules/trials.md, "Candidate queue")."""

from __future__ import annotations

from typing import Any

from ledger.services import EventDraft
from trials.models import AuditRun, Trial
from workers.domain.homeostat import GeneSuggestionDraft


def suggestion_queue(
    *,
    draft: GeneSuggestionDraft,
    actor: str,
    controller_node_id: str | None = None,
    audit_run: AuditRun | None = None,
    event_context: EventDraft | None = None,
) -> Trial:
    """Store the suggestion, build its candidate genome version from the current champion,
    and queue its trial: ``gene_suggestion_created`` and ``trial_queued``, one transaction.

    ``controller_node_id`` defaults to the draft's target when it is a metasystem, else the
    target's parent. Never touches the champion. Raises SuggestionRefused (nothing stored)
    when the patch does not apply or the target is unknown.
    """
    raise NotImplementedError


def on_gene_suggested(sender: str, *, draft: GeneSuggestionDraft, **kwargs: Any) -> None:
    """``workers.signals.gene_suggested``: queue the homeostat's suggestion."""
    raise NotImplementedError

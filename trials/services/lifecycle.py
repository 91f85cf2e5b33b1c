"""Activating, freezing, approving and rejecting trials."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from ledger.services import EventDraft
from trials.models import Trial, TrialApproval


def trial_activate(
    *, actor: str, controller_node_id: str | None = None, trial_id: str | None = None
) -> Trial | None:
    """Make a queued trial the controller's live one: the named trial, or the oldest queued.

    Queued trials whose base is no longer the champion are rejected on the way
    (``trial_rejected`` with the reason). Returns the activated trial, or None when nothing
    queued is left. Raises TrialConflict when the controller already runs a live trial.
    """
    raise NotImplementedError


def trial_freeze(
    *, trial_id: str, reason: str, actor: str, event_context: EventDraft | None = None
) -> list[str]:
    """An algedonic freeze: an active trial becomes frozen (its routing closed), a queued one
    rejected; returns the action strings applied (docs/rules/trials.md, "Freezing")."""
    raise NotImplementedError


def on_freeze_requested(
    sender: str,
    *,
    controller_node_id: str,
    suggestion_id: str | None,
    message: str,
    event_context: EventDraft | None = None,
    **kwargs: Any,
) -> list[str]:
    """``workers.signals.mutation_freeze_requested``: freeze the named or the live trial."""
    raise NotImplementedError


def trial_approve(
    *,
    trial_id: str,
    user: AbstractBaseUser,
    reason: str = "",
    evidence_hash: str = "",
    idempotency_key: str | None = None,
) -> TrialApproval:
    """An operator approves a pending trial: a probation trial's traffic flows, an
    inconclusive trial is promoted (an override of the rule, so it needs a reason).

    Raises ApprovalDenied without ``trials.approve_trial``, TrialNotFound, TrialConflict when
    the trial is not pending, Rejected when a needed reason is missing. A repeated
    ``idempotency_key`` returns the first approval.
    """
    raise NotImplementedError


def trial_reject(
    *,
    trial_id: str,
    user: AbstractBaseUser,
    reason: str,
    evidence_hash: str = "",
    idempotency_key: str | None = None,
) -> TrialApproval:
    """An operator rejects a pending trial (a reason is required): it ends ``rejected``
    (a live one's routing closed, the champion untouched). Errors as ``trial_approve``."""
    raise NotImplementedError

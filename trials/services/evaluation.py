"""A trial's evidence, its decision after every trace, and what the decision does."""

from __future__ import annotations

from typing import Any

from trials.models import Trial


def trial_evaluate(*, trial_id: str, actor: str = "system:trials") -> Trial:
    """Compare the trial's arm with the champion's, record the decision with its numbers,
    and act on it (promote, prune, inconclusive, continue); idempotent when nothing new
    arrived."""
    raise NotImplementedError


def on_evidence_arrived(sender: str, *, trial_id: str, **kwargs: Any) -> None:
    """``workers.signals.trial_evidence_arrived``: evaluate once the hop has committed."""
    raise NotImplementedError

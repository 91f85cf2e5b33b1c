"""A queued candidate as selection sees it, and the history it learns from. Pure, no Django.

Modes are the lower-case trial modes (``shadow``, ``canary``, ``probation``, ``direct``);
sources the suggestion sources as stored (``AlgedonicSignal``, ``System3StarAudit``…).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from organization.genome import Patch

ALGEDONIC = "AlgedonicSignal"
SYSTEM3_STAR = "System3StarAudit"
SYSTEM4 = "System4FutureProbe"
SYSTEM1 = "System1ResourceBargain"
SYSTEM2 = "System2CoordinationSignal"

SHADOW = "shadow"
CANARY = "canary"
PROBATION = "probation"
DIRECT = "direct"

BASIS_POINTS = 10_000


@dataclass(frozen=True, kw_only=True)
class CandidateLimits:
    """The trial's safety limits (docs/rules/trials.md, "Gene suggestions")."""

    requires_approval: bool = False
    max_tasks: int | None = None
    max_token_budget: int | None = None
    max_files_touched: int | None = None
    traffic_share_basis_points: int | None = None
    allowed_task_classes: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Candidate:
    """One queued trial: what selection scores. ``patch`` is parsed; ``patch_kind`` is its
    JSON ``kind``. ``selection_priority`` and ``selection_penalty`` come from the record's
    metadata (an operator's thumb on the scale, inside the frontier only)."""

    trial_id: str
    source: str
    mode: str
    evidence_count: int
    limits: CandidateLimits
    patch: Patch
    patch_kind: str
    selection_priority: float = 0.0
    selection_penalty: float = 0.0

    @property
    def unbounded_direct(self) -> bool:
        """Direct, no approval, no max tasks, no traffic share."""
        limits = self.limits
        return (
            self.mode == DIRECT
            and not limits.requires_approval
            and limits.max_tasks is None
            and limits.traffic_share_basis_points is None
        )

    @property
    def bounded(self) -> bool:
        """Something limits its exposure: approval, max tasks, a budget, a share, or Shadow."""
        limits = self.limits
        return (
            limits.requires_approval
            or limits.max_tasks is not None
            or limits.max_token_budget is not None
            or limits.traffic_share_basis_points is not None
            or self.mode == SHADOW
        )


@dataclass(frozen=True, kw_only=True)
class CompletedTrial:
    """An ended trial of the controller: its source, mode, patch kind, how it ended and its
    realised score (mean per-trace score of its candidate arm; None without traces)."""

    trial_id: str
    source: str
    mode: str
    patch_kind: str
    outcome: str
    realised_score: float | None


# Outcomes whose realised score counts as history: the reference's Promoted, Pruned and
# Archived, and a promotion rolled back afterwards (its candidate arm was real all the same).
REALISED_OUTCOMES = frozenset({"promoted", "pruned", "archived", "rolled_back"})


@dataclass(frozen=True, kw_only=True)
class HistoryAdjustment:
    """The mean realised score of the matching history, clamped and weighted."""

    name: str  # same_source, same_mode, same_patch
    matches: int
    average: float
    value: float

    @property
    def label(self) -> str:
        return f"history_{self.name}_avg={self.average:.3f}_n={self.matches}"


@dataclass(frozen=True, kw_only=True)
class History:
    trials: Sequence[CompletedTrial] = field(default_factory=tuple)

    def realised(self) -> list[CompletedTrial]:
        return [
            trial
            for trial in self.trials
            if trial.outcome in REALISED_OUTCOMES and trial.realised_score is not None
        ]

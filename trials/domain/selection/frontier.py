"""Dominance and the Pareto frontier over candidates' objectives (docs/rules/trials.md,
"Objectives and Pareto frontier"). Pure."""

from __future__ import annotations

from collections.abc import Sequence

from trials.domain.selection.objectives import Objectives


def dominates(a: Objectives, b: Objectives) -> bool:
    """``a`` is no worse than ``b`` on all six objectives and strictly better on one."""
    better = False
    for name in Objectives.BENEFITS:
        mine, theirs = getattr(a, name), getattr(b, name)
        if mine < theirs:
            return False
        better = better or mine > theirs
    for name in Objectives.COSTS:
        mine, theirs = getattr(a, name), getattr(b, name)
        if mine > theirs:
            return False
        better = better or mine < theirs
    return better


def pareto_frontier(points: Sequence[Objectives]) -> list[int]:
    """The indexes of the points no other point dominates, in their order. Equal points do
    not dominate each other, so both stay."""
    return [
        index
        for index, point in enumerate(points)
        if not any(dominates(other, point) for other in points)
    ]

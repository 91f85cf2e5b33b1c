"""Where candidates come from: a scripted source (pure), the same in both engines.

The first candidate of every seed is the reviewer, as the System 3* audit suggests it (the
founding champion fails most of its tasks); the rest come in an order shuffled by the seed.
A gene is never proposed while the champion carries it, never again once pruned, and at most
twice in all (an inconclusive trial gets one more chance, after the others had theirs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .world import GENES

FIRST = "reviewer"
MAX_TRIES = 2


@dataclass
class ScriptedSource:
    seed: int
    order: list[str] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    pruned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        rest = [gene.name for gene in GENES if gene.name != FIRST]
        random.Random(f"evolution-source-{self.seed}").shuffle(rest)
        self.order = [FIRST, *rest]

    def next(self, champion_genes: frozenset[str]) -> str | None:
        eligible = [
            name
            for name in self.order
            if name not in champion_genes
            and name not in self.pruned
            and self.tries.get(name, 0) < MAX_TRIES
        ]
        if not eligible:
            return None
        fewest = min(self.tries.get(name, 0) for name in eligible)
        return next(name for name in eligible if self.tries.get(name, 0) == fewest)

    def tried(self, name: str, state: str) -> None:
        self.tries[name] = self.tries.get(name, 0) + 1
        if state == "pruned":
            self.pruned.add(name)

"""The simulated world: true success rates the loop cannot see (pure, no Django).

An organization's *structure* is the set of genes its genome carries, read from what a leaf's
request shows (the kinds of the leaves beside it, the prompt components in its instructions).
Each structure has a true success rate per task class and a token cost; outcomes are drawn
with common random numbers keyed by (seed, task number), so every structure faces the same
luck on the same task, and a rerun with the same seed draws exactly the same outcomes.

``GENERATION_GENES`` are what the evolution generation's operators produce (``--source
generations``): its parsimony guardrail, read from a leaf's prompt like any prompt gene, and a
legacy coder the retirement operator can retire (read from the serving leaf's own prompt, so a
retired legacy coder, which the router no longer reaches, shows in no request).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from trials.domain.evolution import PARSIMONY_TEXT

TASK_CLASSES = ("code", "docs")
# The founding champion: a lone coder.
BASE_RATES = {"code": 0.30, "docs": 0.50}
BASE_TOKENS = 500
LATENCY_MS = 40
TOKEN_MARGIN = (
    0.25  # the trials' token guardrail, and the world's budget (times the founding tokens)
)


@dataclass(frozen=True)
class Gene:
    """One mutation the loop may try: its patch is built by the source (``.genes``)."""

    name: str
    kind: str  # what trying it on the founding champion is: better, worse, aa, costly, one_class
    effect: dict[str, float]  # success gain per task class
    token_factor: float = 1.0
    peer_kind: str | None = None  # a leaf of this kind beside the coder
    prompt_marker: str | None = None  # a prompt component with this text on the coder
    description: str = ""


GENES: tuple[Gene, ...] = (
    Gene(
        "reviewer",
        "better",
        {"code": 0.25, "docs": 0.25},
        token_factor=1.10,
        peer_kind="Reviewing",
        description="a reviewing leaf beside the coder",
    ),
    Gene(
        "tester",
        "one_class",
        {"code": 0.45, "docs": 0.0},
        token_factor=1.10,
        peer_kind="Testing",
        description="a testing leaf beside the coder: better on code tasks only",
    ),
    Gene(
        "naming-hint",
        "aa",
        {"code": 0.0, "docs": 0.0},
        prompt_marker="Prefer descriptive names for new identifiers.",
        description="a domain hint that changes nothing (A/A)",
    ),
    Gene(
        "skip-tests",
        "worse",
        {"code": -0.30, "docs": -0.30},
        token_factor=0.9,
        prompt_marker="Skip running the test suite to save time.",
        description="a behavior rule that makes work fail more often",
    ),
    Gene(
        "full-context",
        "costly",
        {"code": 0.10, "docs": 0.10},
        token_factor=1.8,
        prompt_marker="Attach the full repository context to every step.",
        description="a behavior rule a little better on success, far worse on tokens",
    ),
)
# What the evolution generation's operators produce (``--source generations``, services engine
# only). Not in ``GENES``: the scripted source's order and the best reachable structure are
# drawn over those alone, so the scripted runs and their chain hashes stay as they were.
LEGACY_MARKER = "Follow the 2019 legacy house style and rewrite every touched file in full."
GENERATION_GENES: tuple[Gene, ...] = (
    Gene(
        "parsimony",
        "worse",
        {"code": -0.02, "docs": -0.02},
        token_factor=0.8,
        prompt_marker=PARSIMONY_TEXT,
        description="the generation's parsimony guardrail in a leaf's prompt: fewer tokens, "
        "a little less success",
    ),
    Gene(
        "legacy",
        "worse",
        {"code": -0.28, "docs": -0.48},
        prompt_marker=LEGACY_MARKER,
        description="a legacy coder the router reaches first: it fails almost every task",
    ),
)
GENE_BY_NAME = {gene.name: gene for gene in (*GENES, *GENERATION_GENES)}


def clip(rate: float) -> float:
    return min(0.95, max(0.02, rate))


@dataclass(frozen=True)
class Structure:
    genes: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, names: Iterable[str]) -> Structure:
        return cls(frozenset(names))

    def rate(self, task_class: str) -> float:
        total = BASE_RATES[task_class] + sum(
            GENE_BY_NAME[name].effect.get(task_class, 0.0) for name in self.genes
        )
        return clip(total)

    @property
    def mean_rate(self) -> float:
        """The true success rate over the task mix (classes equally likely)."""
        return sum(self.rate(task_class) for task_class in TASK_CLASSES) / len(TASK_CLASSES)

    @property
    def token_factor(self) -> float:
        factor = 1.0
        for name in sorted(self.genes):
            factor *= GENE_BY_NAME[name].token_factor
        return factor

    @property
    def tokens(self) -> float:
        return BASE_TOKENS * self.token_factor

    @property
    def within_budget(self) -> bool:
        return self.token_factor <= 1 + TOKEN_MARGIN + 1e-9

    def label(self) -> str:
        return "+".join(sorted(self.genes)) or "founding"


def structure_from_request(peer_leaf_kinds: str, instructions: str) -> Structure:
    """Which genes the genome a leaf runs under carries, from its request alone."""
    peers = set(peer_leaf_kinds.split(","))
    names = [
        gene.name
        for gene in (*GENES, *GENERATION_GENES)
        if (gene.peer_kind is not None and gene.peer_kind in peers)
        or (gene.prompt_marker is not None and gene.prompt_marker in instructions)
    ]
    return Structure.of(names)


def all_structures() -> list[Structure]:
    names = [gene.name for gene in GENES]
    return [
        Structure.of(name for bit, name in enumerate(names) if mask >> bit & 1)
        for mask in range(1 << len(names))
    ]


def best_reachable() -> float:
    """The highest true success rate of a structure within the token budget."""
    return max(s.mean_rate for s in all_structures() if s.within_budget)


def is_best(structure: Structure) -> bool:
    return structure.within_budget and structure.mean_rate >= best_reachable() - 1e-9


def roll(seed: int, task_number: int, stream: str = "success") -> float:
    """A number in [0, 1) fixed by the seed, the task's number in the run and the stream."""
    digest = hashlib.sha256(f"{stream}\x00{seed}\x00{task_number}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def task_class(seed: int, task_number: int) -> str:
    return TASK_CLASSES[int(roll(seed, task_number, "class") * len(TASK_CLASSES))]


@dataclass(frozen=True)
class Outcome:
    success: bool
    input_tokens: int
    output_tokens: int
    latency_ms: int


def outcome(seed: int, task_number: int, klass: str, structure: Structure) -> Outcome:
    """What ``structure`` does on task ``task_number``: success, tokens (±20%), latency."""
    success = roll(seed, task_number) < structure.rate(klass)
    tokens = structure.tokens * (0.8 + 0.4 * roll(seed, task_number, "tokens"))
    return Outcome(
        success=success,
        input_tokens=int(tokens * 0.8),
        output_tokens=int(tokens * 0.2),
        latency_ms=LATENCY_MS + int(20 * roll(seed, task_number, "latency")),
    )


def should_promote(candidate: Structure, champion: Structure) -> bool:
    """What a perfect judge would do: promote a truly better candidate within the guardrail."""
    return (
        candidate.mean_rate > champion.mean_rate + 1e-9
        and candidate.token_factor <= (1 + TOKEN_MARGIN) * champion.token_factor + 1e-9
    )


def trial_kind(candidate: Structure, champion: Structure) -> str:
    """What a trial of ``candidate`` against ``champion`` truly is."""
    gain = candidate.mean_rate - champion.mean_rate
    over_cost = candidate.token_factor > (1 + TOKEN_MARGIN) * champion.token_factor + 1e-9
    if abs(gain) < 1e-9 and abs(candidate.token_factor - champion.token_factor) < 1e-9:
        return "aa"
    if over_cost and gain >= 0:
        return "costly"
    if gain < 0:
        return "worse"
    per_class = [candidate.rate(c) - champion.rate(c) for c in TASK_CLASSES]
    if gain > 0 and min(per_class) <= 1e-9:
        return "one_class"
    return "better" if gain > 0 else "aa"

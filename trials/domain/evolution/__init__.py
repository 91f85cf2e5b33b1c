"""The deterministic evolution generation (docs/rules/trials.md, "Evolution generation"). Pure.

No randomness and no seed: fixed rules over ledger data. A generation of a controller has
room for ``min(population - queued, max offspring)`` new trials; its three operators are
tried in order while room remains, each proposing at most one bounded Canary trial:

1. ``add_prompt_parsimony_guardrail`` under token pressure;
2. ``retire_low_fitness_child``, never the last child that can take a task shape the
   controller still routes;
3. ``recombine_elite_parent_patches`` over elite parents re-evaluated against the current
   champion (:mod:`.elites`), leaving out the steps the champion already has.

Every offspring must be one trial traffic can reach, and none repeats a pending trial or one
already tried on this champion. The service (``trials.services.evolution``) reads the
inputs, queues the offspring and records the generation.
"""

from trials.domain.evolution.checks import (
    PARSIMONY_TAG,
    novel_steps,
    signature,
    step_in_genome,
    task_shape,
    unroutable,
)
from trials.domain.evolution.elites import decided_gain, elite_parents
from trials.domain.evolution.generation import UNROUTABLE, capacity, plan_generation
from trials.domain.evolution.model import (
    OPERATORS,
    PARSIMONY,
    POLICY_NAME,
    RECOMBINE,
    RETIRE,
    SELECTION_POLICY,
    SUGGESTION_SOURCE,
    Elite,
    EvolutionPolicy,
    GenerationInputs,
    GenerationPlan,
    Offspring,
    OperatorReport,
    RecentTrace,
    TrialRecord,
)
from trials.domain.evolution.operators import PARSIMONY_TEXT

__all__ = [
    "OPERATORS",
    "PARSIMONY",
    "PARSIMONY_TAG",
    "PARSIMONY_TEXT",
    "POLICY_NAME",
    "RECOMBINE",
    "RETIRE",
    "SELECTION_POLICY",
    "SUGGESTION_SOURCE",
    "UNROUTABLE",
    "Elite",
    "EvolutionPolicy",
    "GenerationInputs",
    "GenerationPlan",
    "Offspring",
    "OperatorReport",
    "RecentTrace",
    "TrialRecord",
    "capacity",
    "decided_gain",
    "elite_parents",
    "novel_steps",
    "plan_generation",
    "signature",
    "step_in_genome",
    "task_shape",
    "unroutable",
]

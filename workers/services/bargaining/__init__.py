"""Resource bargaining at run time: System 3 grants its System 1 leaves tokens per epoch.

A controller grants its leaf the task's tokens as it routes the task to it
(:func:`grant_for_route`, in the routing hop's transaction), and the leaf reports what it
used afterwards (:func:`grant_usage`). The
decision itself is the pure :func:`workers.domain.bargaining.decide`; this module feeds it
the epoch's usage, the edge's budgets, the System 2 and environment pressure read from the
controller's recent ledger events, and the algedonic pause covering the leaf, then stores the
decision (``ResourceGrant``) and appends the ``resource_allocation_decision`` event.

Invariant: the tokens granted on an edge in an epoch never exceed its token budget (plus what
operators added). Every grant locks the edge's ``ResourceEpoch`` row with ``select_for_update``
before reading the usage and commits the new totals with the decision, so concurrent workers
queue on that row (on SQLite the IMMEDIATE transaction's write lock does the same).

Choices made at run time (docs/rules/bargaining.md, "At run time"):

* **Usage is kept on the epoch row**, not recounted from the last 10,000 ledger events: the
  row is what makes the lock possible, and the ledger still records every decision with the
  decision metadata. As in the pure domain, Denied decisions do not count.
* **Requested tokens** (:func:`leaf_token_request`): the leaf's
  ``context_policy.max_total_task_tokens``, else the controller's
  ``system_3.default_task_budget_tokens``, else an estimate of the prompt (a token per four
  bytes, ``rough_token_estimate``). The first two are what the genome says a task may cost;
  the estimate only keeps an unconfigured edge with a token budget meaningful.
* **No reply envelope.** The controller decides as it routes, so the grant travels with the
  task (``resource_grant_*`` metadata on its envelope) instead of in a reply of its own.
* **An edge without budgets is not limited**: the decision is still made and recorded, and
  only the genome's task caps, pressure and pauses can cut it.
* **A denied task is deferred by its controller** (``DeferredTask``, ``deferred_budget``) and
  raises one pain signal per edge and epoch; the task goes back to its controller when the
  epoch has passed (:func:`deferred_release`, run by beat) or when an operator adds tokens
  (:func:`grant_extra_tokens`). A leaf denied because its subtree is paused is not deferred:
  its task is held for the resume like any task routed into a paused subtree.

Layout: :mod:`.grants` asks, decides and records usage; :mod:`.deferrals` holds denied work
and releases it (new epoch, operator's extra grant).
"""

from workers.services.bargaining.deferrals import (
    GrantRejected,
    deferred_release,
    grant_extra_tokens,
    task_defer,
)
from workers.services.bargaining.grants import (
    current_epoch_key,
    epoch_budgets,
    grant_for_route,
    grant_request,
    grant_usage,
    leaf_token_request,
    lock_epoch,
)

__all__ = [
    "GrantRejected",
    "current_epoch_key",
    "deferred_release",
    "epoch_budgets",
    "grant_extra_tokens",
    "grant_for_route",
    "grant_request",
    "grant_usage",
    "leaf_token_request",
    "lock_epoch",
    "task_defer",
]

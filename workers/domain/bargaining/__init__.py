"""Resource bargaining between a System 3 controller and its System 1 children. Pure.

A child asks its controller for tokens, tool permissions and context refs (a
:class:`ResourceBargain`, perhaps carrying the task it proposes to do); :func:`decide` answers
with a :class:`ResourceAllocationDecision`, following the decision procedure with the reasons
worded exactly as the reference words them. Everything it reads is passed in: the genome, the
requester's usage of the current epoch (:func:`summarise_epoch_usage` over the controller's
``resource_allocation_decision`` events), the System 2 coordination pressure on the requester
(:func:`summarise_coordination_pressure`), the environment pressure
(:func:`summarise_environment_pressure`) and whether the requester's subtree is paused by
an algedonic signal (:class:`PauseFacts`). :func:`decision_metadata`,
:func:`decision_event_payload`, :func:`reply_priority`, :func:`accepted_task_metadata`,
:func:`accepted_task` and :func:`work_accepted_payload` build the outputs
(docs/rules/bargaining.md).

Improvements on the reference kernel (docs/rules/bargaining.md, "Epoch usage", "Epochs"):

* **Denied requests do not use up the message budget.** The reference counted every decision of
  the epoch, so a child refused for a bad request (or while paused) lost its quota for the hour.
  Here only Approved and PartiallyApproved decisions count: :func:`summarise_epoch_usage` skips
  Denied ones, and a Denied decision reports ``resource_epoch_allocation_count_after`` equal to
  ``..._before`` and ``resource_epoch_remaining_messages_after`` equal to ``..._before``.
* **Epoch length is configurable.** :func:`epoch_key` takes ``epoch_seconds`` (default 3600).
  Epochs are aligned to multiples of ``epoch_seconds`` since the Unix epoch, and the key is the
  epoch's first instant in UTC, ``YYYY-MM-DDTHH:MM:SSZ``: hourly keys are exactly the
  reference's ``YYYY-MM-DDTHH:00:00Z``, daily ones end in ``T00:00:00Z``.

Other choices: a naive datetime is refused (no guessing a time zone); a negative
``requested_tokens`` is refused when the bargain is built (the reference's unsigned type made it
impossible); the summaries ignore events of other kinds, but which "last N" events to pass is
the caller's choice.

Layout: :mod:`.records` (the request, the decision, the pause, event readers), :mod:`.epochs`
(budgets, usage), :mod:`.pressure`, :mod:`.decision`, :mod:`.outputs` and :mod:`.work`.
"""

from workers.domain.bargaining.decision import (
    context_ref_allowed,
    decide,
    tool_permission_allowed,
)
from workers.domain.bargaining.epochs import (
    NO_USAGE,
    Budgets,
    EpochUsage,
    edge_budgets,
    epoch_key,
    remaining_messages,
    remaining_tokens,
    summarise_epoch_usage,
)
from workers.domain.bargaining.outputs import (
    accepted_task_metadata,
    coordination_metadata,
    decision_event_payload,
    decision_metadata,
    epoch_metadata,
    pause_metadata,
    reply_priority,
)
from workers.domain.bargaining.pressure import (
    NO_COORDINATION_PRESSURE,
    CoordinationPressure,
    EnvironmentPressureDetails,
    environment_pressure_details,
    homeostat_pressure_affects_allocation,
    homeostat_token_cap,
    summarise_coordination_pressure,
    summarise_environment_pressure,
)
from workers.domain.bargaining.records import (
    ACCEPTED_ROUTING_REASON,
    ALLOCATION_POLICY,
    COORDINATION_EVENT_KIND,
    DECISION_EVENT_KIND,
    DEFAULT_EPOCH_SECONDS,
    ENVIRONMENT_EVENT_KINDS,
    HOMEOSTAT_EVENT_KIND,
    MAX_REASONS,
    AllocationStatus,
    EventRecord,
    PauseFacts,
    ResourceAllocationDecision,
    ResourceBargain,
)
from workers.domain.bargaining.work import (
    WORK_ACCEPTED_EVENT,
    accepted_task,
    work_accepted_payload,
)

__all__ = [
    "ACCEPTED_ROUTING_REASON",
    "ALLOCATION_POLICY",
    "COORDINATION_EVENT_KIND",
    "DECISION_EVENT_KIND",
    "DEFAULT_EPOCH_SECONDS",
    "ENVIRONMENT_EVENT_KINDS",
    "HOMEOSTAT_EVENT_KIND",
    "MAX_REASONS",
    "NO_COORDINATION_PRESSURE",
    "NO_USAGE",
    "WORK_ACCEPTED_EVENT",
    "AllocationStatus",
    "Budgets",
    "CoordinationPressure",
    "EnvironmentPressureDetails",
    "EpochUsage",
    "EventRecord",
    "PauseFacts",
    "ResourceAllocationDecision",
    "ResourceBargain",
    "accepted_task",
    "accepted_task_metadata",
    "context_ref_allowed",
    "coordination_metadata",
    "decide",
    "decision_event_payload",
    "decision_metadata",
    "edge_budgets",
    "environment_pressure_details",
    "epoch_key",
    "epoch_metadata",
    "homeostat_pressure_affects_allocation",
    "homeostat_token_cap",
    "pause_metadata",
    "remaining_messages",
    "remaining_tokens",
    "reply_priority",
    "summarise_coordination_pressure",
    "summarise_environment_pressure",
    "summarise_epoch_usage",
    "tool_permission_allowed",
    "work_accepted_payload",
]

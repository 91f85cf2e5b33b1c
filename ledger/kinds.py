"""Every ledger event kind, as named constants (docs/rules/ledger.md, "Event kinds").

Storage keys are the snake_case names. The reference stores its ``Other(x)``
kinds as ``other:x``; here every kind is a first-class constant instead.
"""

from __future__ import annotations

# Controller and worker lifecycle
CONTROLLER_STARTED = "controller_started"
WORKER_STARTED = "worker_started"

# Messages between nodes
MESSAGE_RECEIVED = "message_received"
MESSAGE_PUBLISHED = "message_published"

# Directives, tasks, results, traces
DIRECTIVE_ACCEPTED = "directive_accepted"
DIRECTIVE_COMPLETED = "directive_completed"
DIRECTIVE_FAILED = "directive_failed"
TASK_ROUTING_FAILED = "task_routing_failed"
TASK_EXECUTION_STARTED = "task_execution_started"
TASK_MAPPED = "task_mapped"
TASK_ROUTED = "task_routed"
TASK_RESULT_RECEIVED = "task_result_received"
TRACE_WRITTEN = "trace_written"
COMMAND_RECEIVED = "command_received"
DECOMPOSITION_REVISION_CREATED = "decomposition_revision_created"
CAPABILITY_VIOLATION = "capability_violation"

# System 2 coordination, handoffs, environment
SYSTEM2_COORDINATION_SIGNAL = "system2_coordination_signal"
SYSTEM2_DAMPENING_TASK_CREATED = "system2_dampening_task_created"
OPERATION_HANDOFF_RECEIVED = "operation_handoff_received"
MANAGEMENT_OPERATION_DIRECTIVE_RECEIVED = "management_operation_directive_received"
OPERATION_ENVIRONMENT_SIGNAL = "operation_environment_signal"
FUTURE_PROBE_ENVIRONMENT_SIGNAL = "future_probe_environment_signal"
ENVIRONMENT_INTERACTION_SIGNAL = "environment_interaction_signal"
ENVIRONMENT_SIGNAL = "environment_signal"
THREE_FOUR_HOMEOSTAT_SIGNAL = "three_four_homeostat_signal"
# Ours (not in the reference): an outside signal entered through the API.
ENVIRONMENT_SIGNAL_RAISED = "environment_signal_raised"

# Resource bargaining
RESOURCE_ALLOCATION_DECISION = "resource_allocation_decision"
RESOURCE_BARGAIN_WORK_ACCEPTED = "resource_bargain_work_accepted"
# Ours (not in the reference): a leaf deferred a task for want of a grant, a deferred task
# went back to its controller, an operator raised an edge's budget for the epoch.
RESOURCE_TASK_DEFERRED = "resource_task_deferred"
RESOURCE_DEFERRED_TASK_RELEASED = "resource_deferred_task_released"
RESOURCE_EXTRA_GRANTED = "resource_extra_granted"

# Algedonic signals
ALGEDONIC_SIGNAL_RAISED = "algedonic_signal_raised"
ALGEDONIC_SIGNAL_RECEIVED = "algedonic_signal_received"
ALGEDONIC_SUBTREE_PAUSED = "algedonic_subtree_paused"
ALGEDONIC_SUBTREE_RESUMED = "algedonic_subtree_resumed"
ALGEDONIC_SUBTREE_ROUTE_BLOCKED = "algedonic_subtree_route_blocked"
ALGEDONIC_ESCALATED = "algedonic_escalated"
ALGEDONIC_ESCALATION_AT_ROOT = "algedonic_escalation_at_root"
ALGEDONIC_OVERRIDE_APPLIED = "algedonic_override_applied"

# System 3* audits and gene suggestions
AUDIT_STARTED = "audit_started"
AUDIT_COMPLETED = "audit_completed"
# Ours (not in the reference): an audit report arrived on the Audit channel; one was refused
# as malformed (the hop goes on).
AUDIT_REPORT_RECEIVED = "audit_report_received"
AUDIT_REPORT_REJECTED = "audit_report_rejected"
GENE_SUGGESTION_CREATED = "gene_suggestion_created"

# The genome
GENOME_BOOTSTRAPPED = "genome_bootstrapped"
GENOME_PATCH_APPLIED = "genome_patch_applied"
GENOME_ROLLED_BACK = "genome_rolled_back"

# Trials and evolution
TRIAL_QUEUED = "trial_queued"
TRIAL_STARTED = "trial_started"
TRIAL_TASK_ROUTED = "trial_task_routed"
TRIAL_TRACE_RECORDED = "trial_trace_recorded"
TRIAL_DECISION_RECORDED = "trial_decision_recorded"
TRIAL_PROMOTED = "trial_promoted"
TRIAL_PRUNED = "trial_pruned"
TRIAL_REJECTED = "trial_rejected"
TRIAL_FROZEN = "trial_frozen"
# Ours (not in the reference): a trial ran out of evidence or time and waits for an operator;
# an operator approved or rejected one; a candidate route fell back to the champion's; a
# shadow result was recorded as evidence and not forwarded; a promotion's watch window
# opened, passed, or rolled the champion back.
TRIAL_INCONCLUSIVE = "trial_inconclusive"
TRIAL_APPROVAL_RECORDED = "trial_approval_recorded"
TRIAL_ROUTE_FALLBACK = "trial_route_fallback"
TRIAL_SHADOW_RESULT_RECORDED = "trial_shadow_result_recorded"
TRIAL_WATCH_STARTED = "trial_watch_started"
TRIAL_WATCH_PASSED = "trial_watch_passed"
TRIAL_ROLLED_BACK = "trial_rolled_back"
EVOLUTION_GENERATION_CREATED = "evolution_generation_created"

# Ours (not in the reference): who may do what. A user's roles changed; an admin registered,
# changed or removed an acceptance verifier (a command directives' checks may run).
USER_ROLES_CHANGED = "user_roles_changed"
ACCEPTANCE_VERIFIER_REGISTERED = "acceptance_verifier_registered"
ACCEPTANCE_VERIFIER_REMOVED = "acceptance_verifier_removed"

ALL_KINDS: tuple[str, ...] = tuple(
    value for name, value in sorted(globals().items()) if name.isupper() and isinstance(value, str)
)
KIND_CHOICES = [(kind, kind.replace("_", " ")) for kind in ALL_KINDS]

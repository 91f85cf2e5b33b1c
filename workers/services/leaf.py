"""The System 1 leaf harness (docs/rules/leaf.md): check, prompt, provider, acceptance,
trace, result.

The provider call can take minutes, so it runs outside any transaction. The
envelope is claimed only at the end, in the one transaction that stores the trace
and publishes the result: if the worker dies mid-task nothing was written and
the redelivered message runs the task again; if two deliveries race, the one
that claims first wins and the other's work is discarded, so every task has
exactly one trace and one result.

The leaf runs under the genome version its envelope names: a task routed under a
candidate genome executes under the candidate. Its token grant was decided by its
controller when the task was routed (``workers.services.controller.routing``); the
leaf reports what it used. A leaf whose subtree was paused after the task was routed
starts nothing and hands the task back to its parent to hold.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from ledger import kinds
from ledger.compiled import READINGS
from ledger.models import TaskTrace
from ledger.services import (
    ledger_batch,
    ledger_batch_flush_inserts,
    ledger_record,
    task_trace_record,
)
from organization.genome import OrganizationalGenome, VsmChannelType
from workers import events
from workers.acceptance import CheckOutcome, run_acceptance_checks
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, SignalSource
from workers.domain.channels import OUTBOUND_CHANNEL, result_metadata, trace_metadata
from workers.domain.messages import (
    MessageEnvelope,
    PayloadType,
    TaskArtifact,
    TaskPacket,
    TaskResult,
    TaskStatus,
    from_json,
    to_json,
)
from workers.domain.prompt import build_model_request
from workers.domain.routing import TaskRequirements, leaf_refusal
from workers.domain.trial_routing import related_suggestion
from workers.events import ancestors_of, message_event
from workers.models import Envelope, ResourceEpoch, ResourceGrant
from workers.providers import ProviderError, provider_for
from workers.providers.sandbox import (
    SandboxConfigError,
    SandboxHost,
    SandboxOptions,
    Superseded,
)
from workers.services.algedonic import hold_if_paused, paused, signal_raise
from workers.services.bargaining import grant_usage
from workers.services.hop import Hop, delivery_lease, envelope_claim

logger = logging.getLogger(__name__)


@dataclass
class Execution:
    """What running the task produced, before anything is stored."""

    status: TaskStatus
    summary: str
    error: str | None = None
    violation: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    files_touched: list[str] = field(default_factory=list)
    artifacts: list[TaskArtifact] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)


def workspace_for(task_id: str) -> Path:
    return Path(settings.VSM_WORKSPACE_ROOT) / task_id


def sandbox_host() -> SandboxHost:
    """What the admin decided for every agent and verifier this worker runs."""
    return _sandbox_host(
        settings.VSM_ALLOW_UNSANDBOXED_AGENTS,
        tuple(settings.VSM_SANDBOX_READ_ONLY_PATHS),
        tuple(settings.VSM_SANDBOX_HIDDEN_PATHS),
    )


@functools.lru_cache(maxsize=8)
def _sandbox_host(
    allow_unsandboxed: bool, read_only: tuple[str, ...], hidden: tuple[str, ...]
) -> SandboxHost:
    # Resolving the hidden paths asks the file system: once per set of settings, not per task.
    return SandboxHost(
        allow_unsandboxed=allow_unsandboxed,
        read_only_paths=tuple(Path(path) for path in read_only),
        hidden_paths=tuple(Path(path).resolve() for path in hidden),
    )


def _execute(genome: OrganizationalGenome, node_id: str, task: TaskPacket) -> Execution:
    refusal = (
        f"{node_id} is not in the champion genome"
        if node_id not in genome.nodes
        else leaf_refusal(genome, node_id, TaskRequirements.of(task))
    )
    if refusal is not None:
        return Execution(
            TaskStatus.FAILED, "worker refused the task", error=refusal, violation=refusal
        )
    node = genome.nodes[node_id]
    workspace = workspace_for(task.id)
    workspace.mkdir(parents=True, exist_ok=True)
    sandbox = sandbox_host()
    try:
        network = SandboxOptions.from_metadata(node.metadata).network
    except SandboxConfigError as error:
        return Execution(TaskStatus.FAILED, "worker failed to execute task", error=str(error))
    try:
        provider = provider_for(
            node,
            environ=os.environ,
            recordings_dir=settings.VAR_DIR / "recordings",
            sandbox=sandbox,
        )
        response = provider.complete(
            build_model_request(genome, node_id, task), workspace=workspace
        )
    except ProviderError as error:
        spent = error.usage
        return Execution(
            TaskStatus.FAILED,
            "worker failed to execute task",
            error=str(error),
            input_tokens=spent.input_tokens if spent else 0,
            output_tokens=spent.output_tokens if spent else 0,
        )
    usage = response.usage
    execution = Execution(
        TaskStatus.COMPLETED,
        response.output_text,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        files_touched=sorted(set(response.files_touched)),
        artifacts=[TaskArtifact(kind="model_output", content=response.output_text)],
    )
    execution.checks = run_acceptance_checks(
        task.acceptance, workspace=workspace, sandbox=sandbox, network=network
    )
    failed = [check for check in execution.checks if not check.passed]
    if failed:
        execution.status = TaskStatus.FAILED
        execution.error = (
            f"acceptance check {failed[0].name!r} failed: {failed[0].output_tail[-500:]}"
        )
    for check in execution.checks:
        execution.artifacts.append(
            TaskArtifact(
                kind="acceptance_check",
                content=check.output_tail,
                metadata={"name": check.name, "passed": str(check.passed).lower()},
            )
        )
    return execution


def leaf_execute(*, envelope_id: str, worker: str) -> str:
    """Run the task an envelope carries to a leaf; returns what happened.

    One read before the provider, one transaction after it (the claim, the usage of
    the grant the controller made when it routed the task, the trace, the result).
    "superseded" when a newer delivery of the same envelope took the task's workspace (and
    killed this delivery's agent) meanwhile: nothing is claimed or written.
    """
    # The provider may run for minutes: the outbox sweeper must not send the task to a
    # second leaf meanwhile, but should once this lease ends if our process died. The
    # lease reads the envelope (one statement); a paused leaf's hand-back claims it anyway.
    delivery = delivery_lease(envelope_id, seconds=settings.VSM_LEAF_LEASE_SECONDS)
    if isinstance(delivery, str):
        return delivery
    hop = delivery.hop()
    task = from_json(TaskPacket, hop.incoming.payload)
    node_id = hop.node_id
    if node_id in hop.genome.nodes and paused(hop.genome, node_id, hop=hop) is not None:
        return _hand_back(hop, task, worker)
    started_at, clock = timezone.now(), time.monotonic()
    try:
        execution = _execute(hop.genome, node_id, task)
    except Superseded as error:
        # A newer delivery of this envelope killed our agent and runs the task itself; it
        # writes the one trace and result.
        logger.warning(
            "task %s on %s: %s; this delivery's work is discarded", task.id, worker, error
        )
        return "superseded"
    latency_ms = int((time.monotonic() - clock) * 1000)
    used_tokens = execution.input_tokens + execution.output_tokens
    with ledger_batch():
        if not _claim_reporting_usage(hop, worker, used_tokens):
            return "duplicate"
        _record(hop, task, execution, started_at, latency_ms)
    return "handled"


def _record_usage(hop: Hop, used_tokens: int) -> None:
    grant_id = hop.incoming.metadata.get("resource_grant_id")
    if grant_id:
        grant_usage(grant_id=grant_id, used_tokens=used_tokens)


def _claim_reporting_usage(hop: Hop, worker: str, used_tokens: int) -> bool:
    """Claim the envelope and, if this delivery won it, report the grant's usage
    (``grant_usage``): on PostgreSQL one statement that takes the same row locks in the same
    order (the envelope, the grant, its epoch). False if another delivery claimed it first."""
    grant_id = hop.incoming.metadata.get("resource_grant_id")
    if not grant_id or connection.vendor != "postgresql":
        if not envelope_claim(hop.incoming.id, worker=worker):
            return False
        _record_usage(hop, used_tokens)
        return True
    used, now = max(used_tokens, 0), timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH claimed AS (UPDATE {Envelope._meta.db_table} SET handled_at = %s, "
            "handled_by = %s, deliveries = deliveries + 1 "
            "WHERE id = %s AND handled_at IS NULL RETURNING id), "
            f"reported AS (UPDATE {ResourceGrant._meta.db_table} "
            "SET used_tokens = %s, used_at = %s WHERE id = %s AND used_tokens IS NULL "
            "AND EXISTS (SELECT 1 FROM claimed) RETURNING epoch_id), "
            f"counted AS (UPDATE {ResourceEpoch._meta.db_table} "
            "SET used_tokens = used_tokens + %s, updated_at = %s "
            "WHERE id IN (SELECT epoch_id FROM reported) RETURNING id) "
            "SELECT (SELECT count(*) FROM claimed), (SELECT count(*) FROM counted)",
            [now, worker, hop.incoming.id, used, now, grant_id, used, now],
        )
        claimed, _ = cursor.fetchone()
    return bool(claimed)


def _hand_back(hop: Hop, task: TaskPacket, worker: str) -> str:
    """Nothing new starts in a paused subtree: the parent holds the task until the resume.

    The grant made for it is reported unused; the parent grants again when it routes the
    task anew.
    """
    parent_id = hop.parent_id or hop.node_id
    with ledger_batch():
        if not envelope_claim(hop.incoming.id, worker=worker):
            return "duplicate"
        ledger_record(message_event(kinds.MESSAGE_RECEIVED, hop.incoming, hop.genome))
        _record_usage(hop, 0)
        hold_if_paused(Hop(parent_id, hop.genome, hop.incoming), task, hop.node_id)
    return "held"


FAILURE_STREAK = 3


def _raise_pain_if_needed(
    node_id: str, task: TaskPacket, execution: Execution, caused_by: str
) -> None:
    """A capability violation, or a leaf's third failure in a row, is a pain signal (its
    envelope caused by the leaf's: a redelivery finds it, docs/architecture.md "Onward hops")."""
    escalate = OverridePolicy(escalate_to_root=True)
    if execution.violation:
        signal_raise(
            signal=AlgedonicSignal(
                source=SignalSource.CHILD_NODE,
                severity=6,
                target_node_id=node_id,
                related_task_id=task.id,
                override_policy=escalate,
                message=f"capability violation: {execution.violation}",
            ),
            raised_by=f"node:{node_id}",
            caused_by=caused_by,
        )
        return
    if execution.status is TaskStatus.COMPLETED:
        return
    ledger_batch_flush_inserts()  # the streak counts this task's trace, held for the append
    recent = [
        score
        for (score,) in READINGS.rows(
            ("recent outcomes", node_id),
            lambda: (
                TaskTrace.objects.filter(assigned_node_id=node_id)
                .order_by("-started_at")
                .values_list("outcome_score")[: FAILURE_STREAK + 1]
            ),
        )
    ]
    streak = recent[:FAILURE_STREAK]
    before = recent[FAILURE_STREAK:]
    if (
        len(streak) == FAILURE_STREAK
        and all(score < 0 for score in streak)
        and not (before and before[0] < 0)
    ):
        signal_raise(
            signal=AlgedonicSignal(
                source=SignalSource.CHILD_NODE,
                severity=7,
                target_node_id=node_id,
                related_task_id=task.id,
                override_policy=escalate,
                message=(
                    f"{node_id} failed {FAILURE_STREAK} tasks in a row; last: {execution.error}"
                ),
            ),
            raised_by=f"node:{node_id}",
            caused_by=caused_by,
        )


GRANT_KEYS = ("resource_grant_id", "resource_grant_status", "resource_approved_tokens")


def _record(
    hop: Hop,
    task: TaskPacket,
    execution: Execution,
    started_at: datetime,
    latency_ms: int,
) -> None:
    node_id, incoming = hop.node_id, hop.incoming
    ancestors = ancestors_of(hop.genome, node_id)
    ledger_record(message_event(kinds.MESSAGE_RECEIVED, incoming, hop.genome))
    if execution.violation:
        hop.record(events.capability_violation(task, node_id=node_id, reason=execution.violation))
    checks = execution.checks
    grant = {key: incoming.metadata[key] for key in GRANT_KEYS if key in incoming.metadata}
    suggestion = related_suggestion(task.metadata)  # a trial route's task: evidence for it
    trace = TaskTrace(
        task_id=task.id,
        directive_id=task.directive_id,
        genome_id=hop.genome.id,
        assigned_node_id=node_id,
        responsible_ancestor_ids=ancestors,
        related_suggestion_ids=[suggestion] if suggestion else [],
        started_at=started_at,
        completed_at=timezone.now(),
        input_tokens=execution.input_tokens,
        output_tokens=execution.output_tokens,
        latency_ms=latency_ms,
        files_touched=execution.files_touched,
        tests_run=[check.name for check in checks],
        tests_passed=all(check.passed for check in checks) if checks else None,
        merged=None if execution.status is TaskStatus.COMPLETED else False,
        outcome_score=1.0 if execution.status is TaskStatus.COMPLETED else -1.0,
        metadata={
            **trace_metadata(task, incoming),
            **grant,
            "status": execution.status.value,
            **({"capability_violation": execution.violation} if execution.violation else {}),
        },
    )
    # The trace is written before the result is published.
    task_trace_record(trace=trace, actor=f"node:{node_id}")
    _raise_pain_if_needed(node_id, task, execution, incoming.id)
    result = TaskResult(
        task_id=task.id,
        produced_by=node_id,
        status=execution.status,
        summary=execution.summary,
        artifacts=execution.artifacts,
        files_touched=execution.files_touched,
        tests_run=[check.name for check in checks],
        error=execution.error,
        metadata={**result_metadata(task, incoming), "trace_id": trace.id},
    )
    hop.reply(
        MessageEnvelope(
            channel_type=VsmChannelType.MANAGEMENT_TO_OPERATION,
            target_node_id=incoming.source_node_id or hop.parent_id,
            payload_type=PayloadType.TASK_RESULT,
            payload=to_json(result),
            metadata={OUTBOUND_CHANNEL: VsmChannelType.MANAGEMENT_TO_OPERATION.value},
        ),
        task_id=task.id,
        directive_id=task.directive_id,
    )

"""System 1 leaf harness (docs/rules/leaf.md): check, prompt, provider, acceptance, trace, result.

The provider call can take minutes, so it runs outside any transaction. The
envelope is claimed only at the end, in the transaction that stores the trace
and publishes the result: if the worker dies mid-task nothing was written and
the redelivered message runs the task again; if two deliveries race, the one
that claims first wins and the other's work is discarded, so every task has
exactly one trace and one result.

Before the provider, the leaf asks its controller for a token grant (resource
bargaining, ``workers.services.bargaining``) and afterwards reports what it used.
A denied grant means no provider call: the task is deferred until the next epoch
or an operator's extra grant, or, in a paused subtree, held until the resume.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ledger import kinds
from ledger.models import TaskTrace
from ledger.services import EventDraft, ledger_append_many, task_trace_record
from organization.genome import OrganizationalGenome, VsmChannelType
from organization.models import GenomeVersion
from organization.selectors import champion_version, genome_of
from workers.acceptance import CheckOutcome, run_acceptance_checks
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, SignalSource
from workers.domain.bargaining import ResourceBargain
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
from workers.models import Envelope, ResourceGrant
from workers.providers import ProviderError, provider_for
from workers.services.algedonic import hold_if_paused, paused, signal_raise
from workers.services.bargaining import (
    grant_request,
    grant_usage,
    leaf_token_request,
    task_defer,
)
from workers.services.handling import Handling
from workers.services.transport import ancestors_of, envelope_of, envelope_publish, message_event

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
    grant: ResourceGrant | None = None


def workspace_for(task_id: str) -> Path:
    root = Path(os.environ.get("VSM_WORKSPACE_ROOT", settings.VAR_DIR / "workspaces"))
    return root / task_id


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
    try:
        provider = provider_for(
            node, environ=os.environ, recordings_dir=settings.VAR_DIR / "recordings"
        )
        response = provider.complete(
            build_model_request(genome, node_id, task), workspace=workspace
        )
    except ProviderError as error:
        return Execution(TaskStatus.FAILED, "worker failed to execute task", error=str(error))
    usage = response.usage
    execution = Execution(
        TaskStatus.COMPLETED,
        response.output_text,
        input_tokens=usage.input_tokens if usage else 0,
        output_tokens=usage.output_tokens if usage else 0,
        files_touched=sorted(set(response.files_touched)),
        artifacts=[TaskArtifact(kind="model_output", content=response.output_text)],
    )
    execution.checks = run_acceptance_checks(task.acceptance, workspace=workspace)
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
    """Run the task an envelope carries to a leaf; returns what happened."""
    row = Envelope.objects.filter(id=envelope_id).first()
    if row is None:
        logger.error("envelope %s does not exist; dropping its delivery", envelope_id)
        return "missing"
    if row.handled_at is not None:
        return "duplicate"
    Envelope.objects.filter(id=envelope_id).update(deliveries=F("deliveries") + 1)
    version = champion_version()
    assert version is not None
    genome = genome_of(version)
    incoming = envelope_of(row)
    task = from_json(TaskPacket, incoming.payload)
    node_id = str(row.target_node_id)
    grant = _request_grant(genome, incoming, node_id, task)
    if _held_by_pause(genome, node_id, grant):
        return _hold_for_pause(envelope_id, genome, version, incoming, node_id, task, worker)
    if grant is not None and grant.denied:
        return _defer_for_budget(envelope_id, genome, version, incoming, task, worker, grant)
    started_at, clock = timezone.now(), time.monotonic()
    execution = _execute(genome, node_id, task)
    latency_ms = int((time.monotonic() - clock) * 1000)
    with transaction.atomic():
        claimed = Envelope.objects.filter(id=envelope_id, handled_at__isnull=True).update(
            handled_at=timezone.now(), handled_by=worker
        )
        if not claimed:
            return "duplicate"
        if grant is not None:
            # Before _record appends to the ledger: the epoch row is locked before the head.
            grant_usage(
                grant_id=grant.id, used_tokens=execution.input_tokens + execution.output_tokens
            )
            execution.grant = grant
        _record(genome, version, incoming, node_id, task, execution, started_at, latency_ms)
    return "handled"


def _request_grant(
    genome: OrganizationalGenome, incoming: MessageEnvelope, node_id: str, task: TaskPacket
) -> ResourceGrant | None:
    """Ask the leaf's controller for the task's tokens (docs/rules/bargaining.md), before any work.

    None when there is nobody to ask: a node outside the genome (refused later) or a
    root without a parent.
    """
    node = genome.nodes.get(node_id)
    if node is None or node.parent_id is None:
        return None
    return grant_request(
        controller_node_id=node.parent_id,
        bargain=ResourceBargain(
            requested_by=node_id,
            task_id=task.id,
            requested_tokens=leaf_token_request(genome, node_id, task),
            justification=task.title,
        ),
        envelope_id=incoming.id,
        directive_id=task.directive_id,
        correlation_id=incoming.correlation_id or incoming.id,
    )


def _held_by_pause(genome: OrganizationalGenome, node_id: str, grant: ResourceGrant | None) -> bool:
    """A paused subtree gets no grant (docs/rules/algedonic.md); the task waits for the resume."""
    if grant is not None:
        return grant.denied and grant.metadata.get("algedonic_subtree_paused") == "true"
    return node_id in genome.nodes and paused(genome, node_id) is not None


def _defer_for_budget(
    envelope_id: str,
    genome: OrganizationalGenome,
    version: GenomeVersion,
    incoming: MessageEnvelope,
    task: TaskPacket,
    worker: str,
    grant: ResourceGrant,
) -> str:
    """Denied a grant: do not run the provider; hold the task until the edge has budget."""
    with transaction.atomic():
        claimed = Envelope.objects.filter(id=envelope_id, handled_at__isnull=True).update(
            handled_at=timezone.now(), handled_by=worker
        )
        if not claimed:
            return "duplicate"
        # The deferral locks the epoch row and appends its events before ours.
        task_defer(
            grant=grant,
            task=task,
            genome=genome,
            version=version,
            correlation_id=incoming.correlation_id or incoming.id,
        )
        ledger_append_many(drafts=[message_event(kinds.MESSAGE_RECEIVED, incoming, genome)])
    return "deferred"


def _hold_for_pause(
    envelope_id: str,
    genome: OrganizationalGenome,
    version: GenomeVersion,
    incoming: MessageEnvelope,
    node_id: str,
    task: TaskPacket,
    worker: str,
) -> str:
    """Nothing new starts in a paused subtree: hand the task back to the parent to hold."""
    parent_id = genome.nodes[node_id].parent_id or node_id
    with transaction.atomic():
        claimed = Envelope.objects.filter(id=envelope_id, handled_at__isnull=True).update(
            handled_at=timezone.now(), handled_by=worker
        )
        if not claimed:
            return "duplicate"
        handling = Handling(parent_id, genome, version, incoming)
        handling.events.append(message_event(kinds.MESSAGE_RECEIVED, incoming, genome))
        hold_if_paused(handling, task, node_id)
        handling.flush()
    return "held"


FAILURE_STREAK = 3


def _raise_pain_if_needed(node_id: str, task: TaskPacket, execution: Execution) -> None:
    """A capability violation, or a leaf's third failure in a row, is a pain signal."""
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
        )
        return
    if execution.status is TaskStatus.COMPLETED:
        return
    recent = list(
        TaskTrace.objects.filter(assigned_node_id=node_id)
        .order_by("-started_at")
        .values_list("outcome_score", flat=True)[: FAILURE_STREAK + 1]
    )
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
        )


def _grant_metadata(grant: ResourceGrant | None) -> dict[str, str]:
    if grant is None:
        return {}
    return {
        "resource_grant_id": grant.id,
        "resource_grant_status": grant.status,
        "resource_approved_tokens": str(grant.approved_tokens or 0),
    }


def _record(
    genome: OrganizationalGenome,
    version: GenomeVersion,
    incoming: MessageEnvelope,
    node_id: str,
    task: TaskPacket,
    execution: Execution,
    started_at: datetime,
    latency_ms: int,
) -> None:
    ancestors = ancestors_of(genome, node_id)
    events = [message_event(kinds.MESSAGE_RECEIVED, incoming, genome)]
    if execution.violation:
        events.append(
            EventDraft(
                kind=kinds.CAPABILITY_VIOLATION,
                actor=f"node:{node_id}",
                payload={"task_id": task.id, "node_id": node_id, "reason": execution.violation},
                node_id=node_id,
                responsible_ancestor_ids=ancestors,
                task_id=task.id,
                directive_id=task.directive_id,
                correlation_id=incoming.correlation_id,
                causation_id=incoming.id,
                genome_id=version.id,
            )
        )
    checks = execution.checks
    trace = TaskTrace(
        task_id=task.id,
        directive_id=task.directive_id,
        genome_id=version.id,
        assigned_node_id=node_id,
        responsible_ancestor_ids=ancestors,
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
            "status": execution.status.value,
            "task_title": task.title,
            "envelope_id": incoming.id,
            **_grant_metadata(execution.grant),
            **{f"task_metadata.{k}": v for k, v in task.metadata.items()},
        },
    )
    ledger_append_many(drafts=events)
    # The trace is written before the result is published (docs/rules/leaf.md, "Harness steps").
    task_trace_record(trace=trace, actor=f"node:{node_id}")
    _raise_pain_if_needed(node_id, task, execution)
    result = TaskResult(
        task_id=task.id,
        produced_by=node_id,
        status=execution.status,
        summary=execution.summary,
        artifacts=execution.artifacts,
        files_touched=execution.files_touched,
        tests_run=[check.name for check in checks],
        error=execution.error,
        metadata={"directive_id": task.directive_id or "", "trace_id": trace.id},
    )
    parent_id = incoming.source_node_id or genome.nodes[node_id].parent_id
    envelope_publish(
        envelope=MessageEnvelope(
            channel_type=VsmChannelType.MANAGEMENT_TO_OPERATION,
            source_node_id=node_id,
            target_node_id=parent_id,
            correlation_id=incoming.correlation_id or incoming.id,
            causation_id=incoming.id,
            payload_type=PayloadType.TASK_RESULT,
            payload=to_json(result),
            trace=[*incoming.trace, node_id],
        ),
        genome=genome,
        task_id=task.id,
        directive_id=task.directive_id,
    )

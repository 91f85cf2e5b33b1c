"""Results at a controller: forward them up, or (at the root) update the task, revise a
failed decomposed task once, route what became ready and settle the directive.

Only the root updates ``Task`` rows from results, so it observes exactly one result per
task. A directive settles exactly once: when every one of its tasks is finished
(``Task.FINISHED``), by a conditional update that only an unsettled directive matches.

A controller with a live trial first notes what a result means for it
(``trial_routes.result_observed``): a shadow copy's result stops at the controller whose
trial sent it, so it never settles a task or a directive.
"""

from __future__ import annotations

import logging

from django.utils import timezone

from ledger.compiled import READINGS, save_fields
from ledger.services import ledger_batch_insert
from workers import events
from workers.domain.decomposition import REVISION_CHANNEL, plan_revision
from workers.domain.messages import TaskPacket, TaskResult, from_json, to_json
from workers.models import Directive, Task
from workers.services.controller import trial_routes
from workers.services.controller.planning import add_task
from workers.services.controller.routing import route_task, send_result_up
from workers.services.hop import Hop

logger = logging.getLogger(__name__)

UNSETTLED = (Directive.Status.ACCEPTED, Directive.Status.RUNNING)


def on_result(hop: Hop, result: TaskResult) -> None:
    hop.record(events.task_result_received(result))
    if trial_routes.result_observed(hop, result):
        return  # a shadow result at its trial's controller: evidence only, never forwarded
    parent_id = hop.parent_id
    if parent_id is not None:
        send_result_up(hop, result, parent_id)
        return
    directive_id = result.metadata.get("directive_id") or None
    if directive_id:
        # Results of one directive are handled one at a time: two finishing together would
        # each read the other's task as unfinished, and neither would settle the directive.
        # The lock comes first, so the task rows read next include everything committed.
        READINGS.rows(
            ("directive lock",),
            lambda d: Directive.objects.select_for_update().filter(id=d).values_list("id"),
            directive_id,
        )
    rows = (
        READINGS.instances(
            ("tasks of",), lambda d: Task.objects.filter(directive_id=d), directive_id
        )
        if directive_id
        else []
    )
    row = next((r for r in rows if r.id == result.task_id), None)
    if row is None:
        logger.warning("root %s got a result for unknown task %s", hop.node_id, result.task_id)
        return
    if row.status in Task.FINISHED:
        return  # the root observes exactly one result per task
    row.status = Task.Status.COMPLETED if result.succeeded else Task.Status.FAILED
    row.result = to_json(result)
    row.result_summary = result.error or result.summary
    row.executed_by = result.produced_by
    if row.status == Task.Status.FAILED:
        _maybe_revise(hop, row, result, rows)
    save_fields(row, "status", "result", "result_summary", "executed_by", "updated_at")
    route_ready(hop, row.directive_id, rows)


def _maybe_revise(hop: Hop, row: Task, result: TaskResult, rows: list[Task]) -> None:
    """A failed decomposed task gets one revision task; its dependents wait for that instead."""
    failed_task = from_json(TaskPacket, row.packet)
    revision = plan_revision(result, failed_task=failed_task)
    if revision is None:
        return
    row.status = Task.Status.REVISED
    policy = "system3_result_revision"
    for dependent in rows:
        if dependent.status == Task.Status.WAITING and row.id in dependent.dependencies:
            dependent.dependencies = [
                revision.id if d == row.id else d for d in dependent.dependencies
            ]
            _save(dependent, "dependencies")
    rows.append(add_task(hop, row.directive_id, revision, row.role, policy, REVISION_CHANNEL))
    hop.record(
        events.decomposition_revision_created(
            failed=failed_task,
            revision=revision,
            role=row.role,
            result=result,
            source_channel=hop.incoming.channel_type.value,
            revision_channel=REVISION_CHANNEL.value,
        )
    )


def route_ready(hop: Hop, directive_id: str, rows: list[Task]) -> None:
    """Route every waiting task whose dependencies finished; fail those whose failed.

    ``rows`` are all the directive's tasks. A dependency is finished when it completed,
    failed or was superseded by a revision; a revision depends on the task it revises,
    so it is ready when that one failed.
    """
    by_id = {row.id: row for row in rows}
    changed = True
    while changed:
        changed = False
        for row in rows:
            if row.status != Task.Status.WAITING:
                continue
            statuses = [by_id[d].status if d in by_id else None for d in row.dependencies]
            failed = [
                d
                for d, s in zip(row.dependencies, statuses, strict=True)
                if s == Task.Status.FAILED
            ]
            is_revision = "decomposition_revision_of_task_id" in row.packet.get("metadata", {})
            if failed and not is_revision:
                row.status = Task.Status.FAILED
                row.result_summary = f"not run: dependency {failed[0]} failed"
                _save(row, "status", "result_summary")
                changed = True
            elif all(s in Task.FINISHED for s in statuses):
                outcome = route_task(hop, from_json(TaskPacket, row.packet))
                row.status, row.assigned_node_id = outcome.status, outcome.child_id or ""
                row.result_summary = outcome.summary or row.result_summary
                _save(row, "status", "assigned_node_id", "result_summary")
                changed = changed or outcome.status == Task.Status.FAILED
    # New tasks are written with the hop's ledger append; nothing in the hop reads them back.
    ledger_batch_insert(*(row for row in rows if row._state.adding))
    directive_settle(hop, directive_id, rows)


def _save(row: Task, *fields: str) -> None:
    """Update a stored row now; a new one is inserted, with everything, when routing ends."""
    if not row._state.adding:
        save_fields(row, *fields, "updated_at")


def directive_settle(hop: Hop, directive_id: str, rows: list[Task]) -> bool:
    """Complete or fail the directive once every task is finished; True if this settled it.

    Held work (``blocked_paused``, ``deferred_budget``) is not finished: the directive
    keeps running until it is released and done.
    """
    if not rows or any(row.status not in Task.FINISHED for row in rows):
        return False
    counted = [row for row in rows if row.status != Task.Status.REVISED]  # superseded
    failed = sum(1 for row in counted if row.status == Task.Status.FAILED)
    status = Directive.Status.FAILED if failed else Directive.Status.COMPLETED
    summary = f"{len(counted) - failed} of {len(counted)} tasks completed" + (
        f", {failed} failed" if failed else ""
    )
    settled = Directive.objects.filter(id=directive_id, status__in=UNSETTLED).update(
        status=status, completed_at=timezone.now(), result_summary=summary
    )
    if settled:
        hop.record(
            events.directive_settled(
                directive_id=directive_id, failed=bool(failed), status=status, summary=summary
            )
        )
    return bool(settled)

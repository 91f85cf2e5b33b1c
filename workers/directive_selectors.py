"""Reads for ``/directives/<id>/``: a directive with its tasks, and one task in full.

Selectors, like ``workers.selectors`` (kept in a module of their own: that one is past the
size where a module becomes a package). The task graph needs every task's title, status,
dependencies and nodes, never their packets and results (a few kilobytes each, hundreds of
tasks): those are read for the one task the page shows in full.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ledger.models import TaskTrace
from workers.models import Directive, Task

# What the graph and the task list need of each task.
TASK_SUMMARY_FIELDS = (
    "id",
    "directive_id",
    "title",
    "role",
    "status",
    "dependencies",
    "assigned_node_id",
    "executed_by",
    "result_summary",
    "created_at",
    "updated_at",
)
# The order the progress line counts statuses in.
STATUS_ORDER = (
    Task.Status.COMPLETED,
    Task.Status.FAILED,
    Task.Status.REVISED,
    Task.Status.ROUTED,
    Task.Status.BLOCKED_PAUSED,
    Task.Status.DEFERRED_BUDGET,
    Task.Status.WAITING,
)


@dataclass(frozen=True)
class StatusCount:
    status: str
    label: str
    count: int


@dataclass(frozen=True)
class DirectiveTasks:
    directive: Directive
    tasks: list[Task]  # in creation order; packet and result deferred
    by_id: dict[str, Task]

    @property
    def total(self) -> int:
        return len(self.tasks)

    @property
    def finished(self) -> int:
        return sum(1 for task in self.tasks if task.status in Task.FINISHED)

    @property
    def counts(self) -> list[StatusCount]:
        counted = Counter(task.status for task in self.tasks)
        return [
            StatusCount(status=status.value, label=status.label, count=counted[status])
            for status in STATUS_ORDER
            if counted[status]
        ]


def directive_tasks(*, directive_id: str) -> DirectiveTasks | None:
    """The directive and its tasks' summaries (two queries), or None for an unknown id."""
    directive = Directive.objects.filter(id=directive_id).first()
    if directive is None:
        return None
    tasks = list(
        Task.objects.filter(directive_id=directive_id)
        .only(*TASK_SUMMARY_FIELDS)
        .order_by("created_at", "id")
    )
    return DirectiveTasks(directive=directive, tasks=tasks, by_id={t.id: t for t in tasks})


@dataclass(frozen=True)
class VerifierOutcome:
    """One acceptance check as the leaf ran it (an ``acceptance_check`` artifact)."""

    name: str
    command: str | None  # the verifier, from the task's packet
    passed: bool
    output: str  # the last 4,000 characters of its stdout and stderr


@dataclass(frozen=True)
class TaskInFull:
    task: Task
    trace: TaskTrace | None  # the latest, if the task reached a leaf
    checks: list[VerifierOutcome]

    @property
    def acceptance(self) -> list[dict[str, Any]]:
        return list(_packet(self.task).get("acceptance") or [])

    @property
    def goal(self) -> str:
        return str(_packet(self.task).get("goal") or "")

    @property
    def packet_json(self) -> str:
        return json.dumps(self.task.packet, indent=2, ensure_ascii=False)

    @property
    def result_json(self) -> str:
        return json.dumps(self.task.result, indent=2, ensure_ascii=False)


def task_in_full(*, directive_id: str, task_id: str) -> TaskInFull | None:
    """One task of the directive with its packet, result, latest trace and verifier output,
    or None when the directive has no such task."""
    task = Task.objects.filter(directive_id=directive_id, id=task_id).first()
    if task is None:
        return None
    trace = TaskTrace.objects.filter(task_id=task_id).order_by("-started_at").first()
    return TaskInFull(task=task, trace=trace, checks=_checks(task))


def _packet(task: Task) -> dict[str, Any]:
    return task.packet if isinstance(task.packet, dict) else {}


def _checks(task: Task) -> list[VerifierOutcome]:
    commands = {
        str(item.get("name")): item.get("verifier")
        for item in _packet(task).get("acceptance") or []
        if isinstance(item, dict)
    }
    result = task.result if isinstance(task.result, dict) else {}
    checks = []
    for artifact in result.get("artifacts") or []:
        if not isinstance(artifact, dict) or artifact.get("kind") != "acceptance_check":
            continue
        metadata = artifact.get("metadata") or {}
        name = str(metadata.get("name", ""))
        checks.append(
            VerifierOutcome(
                name=name,
                command=commands.get(name),
                passed=metadata.get("passed") == "true",
                output=str(artifact.get("content") or ""),
            )
        )
    return checks

"""Directives travel root → (child metasystems) → leaf and back through a real worker process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.services import genome_bootstrap
from tests.support.processes import WorkerProcess, celery_worker, purge_queues
from workers.models import Directive
from workers.services.directives import directive_submit

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def worker(django_db_setup: Any, django_db_blocker: Any) -> Iterator[WorkerProcess]:
    with django_db_blocker.unblock():
        purge_queues("controllers", "leaves")
        with celery_worker("flow", queues="controllers,leaves", concurrency=2) as process:
            yield process


def finished(directive_id: str, worker: WorkerProcess, timeout: float = 60) -> Directive:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        directive = Directive.objects.get(id=directive_id)
        if directive.is_finished:
            return directive
        time.sleep(0.1)
    raise AssertionError(
        f"directive still {directive.status} after {timeout}s:\n{worker.output[-4000:]}"
    )


def test_the_single_coder_organization_completes_a_directive(worker: WorkerProcess) -> None:
    genome_bootstrap(template="single", actor="operator:test")

    submitted = directive_submit(
        title="Add a health-check endpoint", metadata={"requires_code_write": "true"}
    ).directive
    directive = finished(submitted.id, worker)

    assert directive.status == Directive.Status.COMPLETED
    task = directive.tasks.get()
    assert task.executed_by == "primary-code-service"
    assert task.result is not None
    assert task.result["summary"].startswith("echo: accepted task.")
    trace = TaskTrace.objects.get(task_id=task.id)
    assert trace.responsible_ancestor_ids == ["root-codebase-system"]
    assert trace.outcome_score == 1.0
    assert trace.input_tokens > 0
    assert ledger_verify()[1] is None


def test_the_nested_organization_routes_through_backend_system_and_returns_one_result(
    worker: WorkerProcess,
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")

    submitted = directive_submit(
        title="Add a migration", metadata={"requires_code_write": "true"}
    ).directive
    directive = finished(submitted.id, worker)

    assert directive.status == Directive.Status.COMPLETED
    task = directive.tasks.get()
    trace = TaskTrace.objects.get(task_id=task.id)
    assert trace.assigned_node_id == "backend-coder"
    assert trace.responsible_ancestor_ids == ["backend-system", "root-codebase-system"]
    received = LedgerEvent.objects.filter(kind=kinds.TASK_RESULT_RECEIVED, task_id=task.id)
    assert sorted(str(node) for node in received.values_list("node_id", flat=True)) == [
        "backend-system",
        "root-codebase-system",
    ]
    routed = LedgerEvent.objects.filter(kind=kinds.TASK_ROUTED, task_id=task.id).order_by("seq")
    assert [(e.payload["parent_node_id"], e.payload["child_node_id"]) for e in routed] == [
        ("root-codebase-system", "backend-system"),
        ("backend-system", "backend-coder"),
    ]
    assert ledger_verify()[1] is None


def test_a_leaf_lacking_a_capability_refuses_visibly(worker: WorkerProcess) -> None:
    genome_bootstrap(template="single", actor="operator:test")

    submitted = directive_submit(
        title="Review the change",
        metadata={"target_child": "primary-code-service", "required_capability": "review"},
    ).directive
    directive = finished(submitted.id, worker)

    assert directive.status == Directive.Status.FAILED
    task = directive.tasks.get()
    assert "lacks the required capability 'review'" in task.result_summary
    violation = LedgerEvent.objects.get(kind=kinds.CAPABILITY_VIOLATION)
    assert violation.node_id == "primary-code-service"
    assert TaskTrace.objects.get(task_id=task.id).outcome_score == -1.0


def test_planned_tasks_run_only_after_their_dependencies(worker: WorkerProcess) -> None:
    genome_bootstrap(template="single", actor="operator:test")

    submitted = directive_submit(
        title="Two steps",
        planned_tasks=[
            {"key": "tests", "title": "Write tests", "depends_on": ["code"], "metadata": {}},
            {"key": "code", "title": "Write code", "depends_on": [], "metadata": {}},
        ],
    ).directive
    directive = finished(submitted.id, worker)

    assert directive.status == Directive.Status.COMPLETED
    traces = {
        t.metadata["task_title"]: t for t in TaskTrace.objects.filter(directive_id=directive.id)
    }
    code_done = traces["Write code"].completed_at
    assert code_done is not None
    assert code_done <= traces["Write tests"].started_at

"""Directives travel root → (child metasystems) → leaf and back through a real worker process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.models import SubtreePause
from organization.services import genome_apply_patch, genome_bootstrap
from tests.support.processes import (
    BASE_DIR,
    WorkerProcess,
    celery_worker,
    process_env,
    purge_queues,
)
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy
from workers.domain.commands import Command
from workers.models import Directive, Envelope
from workers.services.algedonic import signal_raise
from workers.services.commands import command_issue
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


REVIEWER = {
    "kind": "add_child",
    "parent_id": "root-codebase-system",
    "child": {
        "id": "reviewer",
        "name": "reviewer",
        "leaf_operation": {
            "kind": "Reviewing",
            "allows_test_execution": True,
            "allows_review": True,
            "allows_research": True,
            "allows_filesystem_read": True,
        },
        "model": {"provider": "echo", "model": "local-echo"},
    },
}


def test_a_decomposed_directive_runs_implementation_then_test_and_review(
    worker: WorkerProcess,
) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=REVIEWER, actor="operator:test")

    submitted = directive_submit(
        title="Add rate limiting",
        risk="High",
        metadata={"decompose": "true", "requires_tests": "true"},
    ).directive
    directive = finished(submitted.id, worker)

    assert directive.status == Directive.Status.COMPLETED
    tasks = {task.role: task for task in directive.tasks.all()}
    assert set(tasks) == {"implementation", "test", "review"}
    assert tasks["implementation"].executed_by == "primary-code-service"
    assert tasks["test"].executed_by == "primary-code-service"
    assert tasks["review"].executed_by == "reviewer"
    implementation = TaskTrace.objects.get(task_id=tasks["implementation"].id)
    for role in ("test", "review"):
        follower = TaskTrace.objects.get(task_id=tasks[role].id)
        assert implementation.completed_at is not None
        assert implementation.completed_at <= follower.started_at


def test_a_failed_implementation_gets_one_revision_and_the_failure_is_visible(
    worker: WorkerProcess,
) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    failing = {
        "kind": "batch",
        "patches": [
            {"kind": "remove_subtree", "node_id": "primary-code-service"},
            {
                "kind": "add_child",
                "parent_id": "root-codebase-system",
                "child": {
                    "id": "failing-coder",
                    "name": "failing-coder",
                    "leaf_operation": {"kind": "Coding", "allows_code_write": True},
                    "model": {"provider": "scripted", "model": "always-fails"},
                    "metadata": {"provider.scripted.outcome": "fail"},
                },
            },
        ],
    }
    genome_apply_patch(patch=failing, actor="operator:test")

    submitted = directive_submit(title="Doomed change", metadata={"decompose": "true"}).directive
    directive = finished(submitted.id, worker)

    assert directive.status == Directive.Status.FAILED
    statuses = sorted((task.role, task.status) for task in directive.tasks.all())
    assert statuses == [("implementation", "failed"), ("implementation", "revised")]
    revision = LedgerEvent.objects.get(kind=kinds.DECOMPOSITION_REVISION_CREATED)
    assert revision.payload["child_node_id"] == "failing-coder"
    assert TaskTrace.objects.filter(directive_id=directive.id).count() == 2


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_directive_submit_waits_and_reports_success_and_failure(worker: WorkerProcess) -> None:
    genome_bootstrap(template="single", actor="operator:test")

    done = manage(
        "directive_submit",
        "Add a health endpoint",
        "--metadata",
        "requires_code_write=true",
        "--wait",
        "--timeout",
        "60",
    )
    refused = manage(
        "directive_submit",
        "Review it",
        "--metadata",
        "target_child=primary-code-service",
        "--metadata",
        "required_capability=review",
        "--wait",
        "--timeout",
        "60",
    )
    bad = manage("directive_submit", "Nowhere", "--metadata", "target_child=ghost")

    assert done.returncode == 0, done.stderr
    assert "directive completed: 1 of 1 tasks completed" in done.stdout
    assert refused.returncode == 1
    assert "lacks the required capability 'review'" in refused.stdout
    assert "failed: 0 of 1 tasks completed, 1 failed" in refused.stderr
    assert bad.returncode == 1
    assert "No node is called 'ghost'" in bad.stderr


def test_a_command_travels_on_the_command_channel_and_its_denials_are_enforced(
    worker: WorkerProcess,
) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    allowed = command_issue(
        command=Command(
            issued_by="root-codebase-system",
            target="primary-code-service",
            title="Summarise the repository",
            metadata={"required_capability": "research"},
        ),
        actor="operator:test",
    )
    denied = command_issue(
        command=Command(
            issued_by="root-codebase-system",
            target="primary-code-service",
            title="Patch the parser",
            denied_capabilities=["write_code"],
            metadata={"requires_code_write": "true"},
        ),
        actor="operator:test",
    )

    assert finished(allowed.id, worker).status == Directive.Status.COMPLETED
    assert finished(denied.id, worker).status == Directive.Status.FAILED
    routed = Envelope.objects.get(
        target_node_id="primary-code-service",
        payload_type="vsm.task_packet",
        correlation_id=allowed.id,
    )
    assert (routed.channel_type, routed.priority) == ("Command", "Critical")
    assert routed.metadata["command_issued_by"] == "root-codebase-system"
    refusal = denied.tasks.get().result_summary
    assert "denied write_code by policy" in refusal
    assert LedgerEvent.objects.filter(kind=kinds.COMMAND_RECEIVED).count() == 2


def test_with_a_real_worker_a_pause_holds_a_task_and_the_resume_releases_it(
    worker: WorkerProcess,
) -> None:
    genome_bootstrap(template="nested", actor="operator:test")

    def raise_signal(**policy: bool) -> None:
        signal_raise(
            signal=AlgedonicSignal(
                target_node_id="backend-coder",
                severity=8,
                message="stop the line",
                override_policy=OverridePolicy(**policy),
            ),
            raised_by="operator:test",
        )

    def wait_for(condition: Any, what: str) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}:\n{worker.output[-3000:]}"
            )
            time.sleep(0.1)

    raise_signal(pause_subtree=True, escalate_to_root=True)
    wait_for(lambda: SubtreePause.objects.filter(node_id="backend-coder").exists(), "the pause")
    wait_for(
        lambda: LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATION_AT_ROOT).exists(),
        "the escalation to reach the root",
    )
    directive = directive_submit(title="Held", metadata={"requires_code_write": "true"}).directive
    wait_for(
        lambda: directive.tasks.filter(status="blocked_paused").exists(), "the task to be held"
    )
    assert not TaskTrace.objects.filter(directive_id=directive.id).exists()

    raise_signal(resume_subtree=True)

    assert finished(directive.id, worker).status == Directive.Status.COMPLETED
    escalations = LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATED)
    assert [e.node_id for e in escalations] == ["backend-system"]

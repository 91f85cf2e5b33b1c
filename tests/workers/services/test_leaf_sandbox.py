"""The leaf runs its verifiers in the sandbox its node's metadata configures."""

from __future__ import annotations

import socket

import pytest

from ledger.models import TaskTrace
from organization.services import genome_apply_patch, genome_bootstrap
from tests.support.processes import drain_in_process
from tests.support.verifiers import registered
from workers.models import Task
from workers.services.directives import directive_submit

pytestmark = pytest.mark.django_db


def echo_coder(metadata: dict[str, str]) -> dict[str, object]:
    return {
        "kind": "batch",
        "patches": [
            {"kind": "remove_subtree", "node_id": "primary-code-service"},
            {
                "kind": "add_child",
                "parent_id": "root-codebase-system",
                "child": {
                    "id": "coder",
                    "name": "coder",
                    "leaf_operation": {"kind": "Coding", "allows_code_write": True},
                    "model": {"provider": "echo", "model": "unbound"},
                    "metadata": metadata,
                },
            },
        ],
    }


def run_with_verifier(metadata: dict[str, str], verifier: str) -> TaskTrace:
    genome_bootstrap(template="single", actor="operator:test")
    genome_apply_patch(patch=echo_coder(metadata), actor="operator:test")
    directive = directive_submit(
        title="Check it",
        metadata={"requires_code_write": "true"},
        acceptance=[{"name": "check", "verifier": registered("check", verifier)}],
    ).directive
    drain_in_process()
    return TaskTrace.objects.get(directive_id=directive.id)


@pytest.mark.parametrize(("metadata", "reached"), [({}, False), ({"sandbox.network": "on"}, True)])
def test_a_verifier_reaches_the_network_only_when_its_node_turns_it_on(metadata, reached):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    try:
        trace = run_with_verifier(metadata, f"exec 3<>/dev/tcp/127.0.0.1/{port}")
    finally:
        server.close()

    assert trace.tests_passed is reached


def test_an_unreadable_network_setting_fails_the_task_naming_the_key():
    trace = run_with_verifier({"sandbox.network": "sometimes"}, "true")

    assert trace.outcome_score == -1.0
    task = Task.objects.get(id=trace.task_id)
    assert task.status == "failed"
    assert task.result is not None
    assert "sandbox.network='sometimes' is invalid" in task.result["error"]
    assert trace.tests_run == []  # nothing ran

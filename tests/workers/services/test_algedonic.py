"""Algedonic signals: raising them, pausing and resuming subtrees, escalating to the root."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent
from ledger.selectors import ledger_verify
from organization.models import SubtreePause
from organization.services import genome_bootstrap
from tests import factories
from tests.support.processes import drain_in_process
from workers.models import AlgedonicSignalRecord, Directive, Envelope
from workers.services.directives import directive_submit

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    genome_bootstrap(template="nested", actor="operator:test")
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


def signal(api: APIClient, **body: Any) -> Any:
    return api.post("/api/signals/", {"severity": 7, "message": "it hurts", **body}, format="json")


def node(api: APIClient, node_id: str) -> dict[str, Any]:
    response = api.get(f"/api/nodes/{node_id}/")
    assert response.status_code == 200
    return dict(response.json())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"target_node_id": "ghost"}, "target_node_id"),
        ({"severity": 11}, "severity"),
        ({"severity": -1}, "severity"),
        ({"override_policy": {"pause": True}}, "override_policy"),
        ({"override_policy": "pause"}, "override_policy"),
        ({"override_policy": {"pause_subtree": True, "resume_subtree": True}}, "override_policy"),
        ({"valence": "Meh"}, "valence"),
        ({"message": ""}, "message"),
    ],
)
def test_a_bad_signal_gets_a_400_and_changes_nothing(
    api: APIClient, body: dict[str, Any], field: str
) -> None:
    response = signal(api, **body)

    assert response.status_code == 400
    assert field in response.json()
    assert not AlgedonicSignalRecord.objects.exists()
    assert not Envelope.objects.exists()


def test_anonymous_signals_are_refused(api: APIClient) -> None:
    assert APIClient().post("/api/signals/", {"severity": 1, "message": "x"}).status_code == 401


def test_a_pause_blocks_routing_and_a_resume_releases_the_waiting_task(api: APIClient) -> None:
    paused = signal(api, target_node_id="backend-system", override_policy={"pause_subtree": True})
    assert paused.status_code == 201
    drain_in_process()

    coder = node(api, "backend-coder")
    assert coder["paused"] is True
    assert coder["pause"]["target_node_id"] == "backend-system"
    assert coder["pause"]["signal_id"] == paused.json()["id"]
    assert node(api, "root-codebase-system")["paused"] is False

    directive = directive_submit(title="Wait for me", metadata={"requires_code_write": "true"})
    drain_in_process()
    task = directive.directive.tasks.get()
    assert task.status == "blocked_paused"
    blocked = LedgerEvent.objects.get(kind=kinds.ALGEDONIC_SUBTREE_ROUTE_BLOCKED)
    assert blocked.payload["child_node_id"] == "backend-system"
    assert not Envelope.objects.filter(
        target_node_id="backend-system", payload_type="vsm.task_packet"
    ).exists()

    resumed = signal(
        api,
        target_node_id="backend-system",
        valence="Pleasure",
        severity=1,
        override_policy={"resume_subtree": True},
    )
    assert resumed.status_code == 201
    drain_in_process()

    assert node(api, "backend-coder")["paused"] is False
    assert Directive.objects.get(id=directive.directive.id).status == "completed"
    assert ledger_verify()[1] is None


def test_resuming_a_child_leaves_it_paused_by_its_paused_ancestor(api: APIClient) -> None:
    signal(api, target_node_id="root-codebase-system", override_policy={"pause_subtree": True})
    signal(api, target_node_id="backend-coder", override_policy={"resume_subtree": True})
    drain_in_process()

    assert node(api, "backend-coder")["pause"]["target_node_id"] == "root-codebase-system"


def test_escalation_climbs_from_backend_coder_to_the_root_hop_by_hop(api: APIClient) -> None:
    signal(api, target_node_id="backend-coder", override_policy={"escalate_to_root": True})
    drain_in_process()

    hops = LedgerEvent.objects.filter(
        kind__in=[kinds.ALGEDONIC_ESCALATED, kinds.ALGEDONIC_ESCALATION_AT_ROOT]
    ).order_by("seq")
    assert [(e.kind, e.node_id) for e in hops] == [
        (kinds.ALGEDONIC_ESCALATED, "backend-system"),
        (kinds.ALGEDONIC_ESCALATION_AT_ROOT, "root-codebase-system"),
    ]
    forwarded = Envelope.objects.get(target_node_id="root-codebase-system")
    assert (forwarded.channel_type, forwarded.priority) == ("Algedonic", "Interrupt")
    received = LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_SIGNAL_RECEIVED)
    assert [e.node_id for e in received.order_by("seq")] == [
        "backend-system",
        "root-codebase-system",
    ]


def test_a_leaf_does_not_start_a_task_delivered_after_its_subtree_was_paused(
    api: APIClient,
) -> None:
    directive = directive_submit(title="Late", metadata={"requires_code_write": "true"}).directive
    # Route the task down to the leaf's queue, but pause before the leaf runs it.
    from workers.services.controller import controller_receive

    for target in ("root-codebase-system", "backend-system"):
        pending = Envelope.objects.get(target_node_id=target, handled_at__isnull=True)
        controller_receive(envelope_id=pending.id, worker="in-process")
    SubtreePause.objects.create(
        node_id="backend-coder",
        signal_id="s",
        paused_at=directive.created_at,
        paused_by="op",
        reason="stop",
        severity=9,
    )

    drain_in_process()

    task = Directive.objects.get(id=directive.id).tasks.get()
    assert task.status == "blocked_paused"
    assert not LedgerEvent.objects.filter(kind=kinds.TRACE_WRITTEN).exists()


FAILING_CODER = {
    "kind": "batch",
    "patches": [
        {"kind": "remove_subtree", "node_id": "backend-coder"},
        {
            "kind": "add_child",
            "parent_id": "backend-system",
            "child": {
                "id": "flaky-coder",
                "name": "flaky-coder",
                "leaf_operation": {"kind": "Coding", "allows_code_write": True},
                "model": {"provider": "scripted", "model": "fails"},
                "metadata": {"provider.scripted.outcome": "fail"},
            },
        },
    ],
}


def test_a_leaf_failing_three_tasks_in_a_row_raises_one_pain_signal(api: APIClient) -> None:
    from organization.services import genome_apply_patch

    genome_apply_patch(patch=FAILING_CODER, actor="operator:test")
    for number in range(4):
        directive_submit(title=f"Attempt {number}", metadata={"requires_code_write": "true"})
        drain_in_process()

    pain = AlgedonicSignalRecord.objects.get()
    assert (pain.target_node_id, pain.severity, pain.raised_by) == (
        "flaky-coder",
        7,
        "node:flaky-coder",
    )
    assert "failed 3 tasks in a row" in pain.message
    assert LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATION_AT_ROOT).count() == 1


def test_a_capability_violation_raises_a_pain_signal_that_reaches_the_root() -> None:
    genome_bootstrap(template="single", actor="operator:test")

    directive_submit(
        title="Review",
        metadata={"target_child": "primary-code-service", "required_capability": "review"},
    )
    drain_in_process()

    pain = AlgedonicSignalRecord.objects.get()
    assert pain.target_node_id == "primary-code-service"
    assert pain.message.startswith("capability violation: primary-code-service lacks")
    assert LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATION_AT_ROOT).count() == 1

"""The runtime, hop by hop: what a user sees of directives while work is held, which channel
each task travels on, the lineage every hop carries, and the genome version each runs under."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.selectors import champion_version_id
from organization.services import genome_apply_patch, genome_bootstrap
from tests import factories
from tests.support.processes import drain_in_process
from tests.support.verifiers import registered
from workers.models import Directive, Envelope, Task
from workers.services.bargaining import grant_extra_tokens
from workers.services.delivery import envelope_deliver
from workers.services.directives import directive_submit

pytestmark = pytest.mark.django_db

CODE = {"requires_code_write": "true"}


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


def directive_status(api: APIClient, directive_id: str) -> dict[str, Any]:
    response = api.get(f"/api/directives/{directive_id}/")
    assert response.status_code == 200
    return dict(response.json())


def settled_events(directive_id: str) -> list[str]:
    return list(
        LedgerEvent.objects.filter(
            directive_id=directive_id,
            kind__in=[kinds.DIRECTIVE_COMPLETED, kinds.DIRECTIVE_FAILED],
        ).values_list("kind", flat=True)
    )


def test_a_directive_whose_task_is_held_by_a_pause_is_running_until_the_resume(
    api: APIClient,
) -> None:
    genome_bootstrap(template="single", actor="operator:test")
    pause = {"pause_subtree": True}
    api.post(
        "/api/signals/",
        {
            "target_node_id": "primary-code-service",
            "severity": 8,
            "message": "red",
            "override_policy": pause,
        },
        format="json",
    )
    drain_in_process()
    directive = directive_submit(title="Wait", metadata=CODE).directive
    drain_in_process()

    held = directive_status(api, directive.id)
    assert held["status"] == "running"
    assert [t["status"] for t in held["tasks"]] == ["blocked_paused"]
    assert settled_events(directive.id) == []

    api.post(
        "/api/signals/",
        {
            "target_node_id": "primary-code-service",
            "severity": 1,
            "valence": "Pleasure",
            "message": "green",
            "override_policy": {"resume_subtree": True},
        },
        format="json",
    )
    drain_in_process()

    done = directive_status(api, directive.id)
    assert done["status"] == "completed"
    assert done["result_summary"] == "1 of 1 tasks completed"
    assert settled_events(directive.id) == [kinds.DIRECTIVE_COMPLETED]
    assert ledger_verify()[1] is None


ROOT, CODER = "root-codebase-system", "metered-coder"


def budgeted(tokens: int) -> None:
    """A root with one coder that asks 100 tokens a task, on an edge with a token budget."""
    genome_bootstrap(template="single", actor="operator:test")
    channel = f"{ROOT}->{CODER}:ResourceBargaining"
    leaf = {
        "id": CODER,
        "name": CODER,
        "leaf_operation": {"kind": "Coding", "allows_code_write": True},
        "model": {"provider": "echo", "model": "local-echo"},
        "context_policy": {"max_total_task_tokens": 100},
    }
    genome_apply_patch(
        patch={
            "kind": "batch",
            "patches": [
                {"kind": "remove_subtree", "node_id": "primary-code-service"},
                {"kind": "add_child", "parent_id": ROOT, "child": leaf},
                {"kind": "remove_channel", "channel_id": channel},
                {
                    "kind": "add_channel",
                    "channel": {
                        "id": channel,
                        "channel_type": "ResourceBargaining",
                        "from": ROOT,
                        "to": CODER,
                        "direction": "Bidirectional",
                        "max_token_budget_per_epoch": tokens,
                    },
                },
            ],
        },
        actor="operator:test",
    )


def test_a_directive_with_a_task_deferred_for_budget_is_running_until_it_runs(
    api: APIClient,
) -> None:
    budgeted(100)
    directive = directive_submit(
        title="Two",
        metadata=CODE,
        planned_tasks=[{"key": "a", "title": "first"}, {"key": "b", "title": "second"}],
    ).directive
    drain_in_process()

    held = directive_status(api, directive.id)
    assert held["status"] == "running"
    assert sorted(t["status"] for t in held["tasks"]) == ["completed", "deferred_budget"]
    assert settled_events(directive.id) == []

    grant_extra_tokens(
        controller_node_id=ROOT,
        requester_node_id=CODER,
        tokens=100,
        actor="user:operator",
    )
    drain_in_process()

    done = directive_status(api, directive.id)
    assert done["status"] == "completed"
    assert done["result_summary"] == "2 of 2 tasks completed"
    assert settled_events(directive.id) == [kinds.DIRECTIVE_COMPLETED]


def test_the_cli_keeps_waiting_while_the_task_is_held(capsys: pytest.CaptureFixture[str]) -> None:
    budgeted(100)
    directive_submit(title="Spend it", metadata=CODE)
    drain_in_process()
    naps: list[str] = []

    def nap(_: float) -> None:
        # The first nap lets the organization work; later ones happen only if it keeps waiting.
        naps.append(Directive.objects.get(title="Deferred").status)
        if len(naps) == 1:
            drain_in_process()
        else:
            raise SystemExit("still waiting")

    with pytest.raises(SystemExit) as waited, pytest.MonkeyPatch.context() as patch:
        patch.setattr("time.sleep", nap)
        call_command(
            "directive_submit", "Deferred", "--metadata", "requires_code_write=true", "--wait"
        )
    assert str(waited.value) == "still waiting"
    assert naps == ["accepted", "running"]
    assert Task.objects.get(directive__title="Deferred").status == "deferred_budget"


def test_decomposed_follow_up_tasks_travel_on_system2_coordination_at_high_priority() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    directive = directive_submit(
        title="Add caching",
        metadata={**CODE, "decompose": "true", "requires_tests": "true"},
    ).directive
    drain_in_process()

    routed = {
        e.payload["task_title"]: e.payload
        for e in LedgerEvent.objects.filter(kind=kinds.TASK_ROUTED, directive_id=directive.id)
    }
    implementation, test = routed["Implement: Add caching"], routed["Test: Add caching"]
    assert (implementation["outbound_channel"], implementation["channel_priority"]) == (
        "ResourceBargaining",
        "Normal",
    )
    assert (test["outbound_channel"], test["channel_priority"]) == ("System2Coordination", "High")
    envelope = Envelope.objects.get(
        payload_type="vsm.task_packet", payload__title="Test: Add caching"
    )
    assert (envelope.channel_type, envelope.priority) == ("System2Coordination", "High")
    assert Directive.objects.get(id=directive.id).status == "completed"


def test_a_revision_travels_on_system2_coordination() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    directive = directive_submit(
        title="Break it",
        metadata={**CODE, "decompose": "true"},
        acceptance=[{"name": "fails", "verifier": registered("always-fails", "false")}],
    ).directive
    drain_in_process()

    revision = Envelope.objects.get(
        payload_type="vsm.task_packet", payload__title__startswith="Revise"
    )
    assert revision.channel_type == "System2Coordination"
    assert Task.objects.filter(directive_id=directive.id, status="revised").count() == 1


def test_routed_tasks_carry_their_lineage_to_the_result_and_the_trace() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive = directive_submit(title="Trace me", metadata=CODE).directive
    drain_in_process()

    to_leaf = Envelope.objects.get(target_node_id="backend-coder", payload_type="vsm.task_packet")
    assert to_leaf.metadata["vsm_source_channel"] == "ResourceBargaining"
    assert to_leaf.metadata["vsm_source_payload_type"] == "vsm.task_packet"
    trace = TaskTrace.objects.get(directive_id=directive.id)
    for key in (
        "task_title",
        "vsm_outbound_channel",
        "envelope_id",
        "correlation_id",
        "channel_priority",
        "task_risk",
        "vsm_source_channel",
    ):
        assert trace.metadata[key], key
    assert trace.metadata["task_title"] == "Trace me"
    assert trace.metadata["correlation_id"] == directive.id
    result = Envelope.objects.get(target_node_id="backend-system", payload_type="vsm.task_result")
    assert result.payload["metadata"]["task_title"] == "Trace me"
    assert result.payload["metadata"]["vsm_source_channel"] == "ResourceBargaining"


def test_every_hop_runs_under_the_version_the_directive_was_routed_under() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    routed_under = champion_version_id()
    directive = directive_submit(title="Keep the rules", metadata=CODE).directive
    envelope_deliver(envelope_id=Envelope.objects.get().id, worker="test")  # root routes it
    # A patch lands while the task is in flight: the coder may no longer write code.
    genome_apply_patch(
        patch={"kind": "set_node_status", "node_id": "backend-coder", "status": "Retired"},
        actor="operator:test",
    )
    assert champion_version_id() != routed_under

    drain_in_process()

    assert set(Envelope.objects.values_list("genome_id", flat=True)) == {routed_under}
    trace = TaskTrace.objects.get(directive_id=directive.id)
    assert (trace.genome_id, trace.assigned_node_id) == (routed_under, "backend-coder")
    assert Directive.objects.get(id=directive.id).status == "completed"


def test_each_hop_commits_once_and_appends_to_the_ledger_once() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    directive_submit(title="Count me", metadata=CODE)
    hops = 0
    while (pending := Envelope.objects.filter(handled_at__isnull=True).first()) is not None:
        with CaptureQueriesContext(connection) as queries:
            envelope_deliver(envelope_id=pending.id, worker="test")
        heads = [q for q in queries.captured_queries if "ledger_ledgerhead" in q["sql"]]
        locks = [q for q in heads if q["sql"].lstrip().upper().startswith("SELECT")]
        assert len(locks) == 1, pending.payload_type
        hops += 1
    assert hops == 5


def test_the_cli_refuses_what_the_api_refuses_and_stores_nothing() -> None:
    genome_bootstrap(template="single", actor="operator:test")
    with pytest.raises(CommandError) as refused:
        call_command("directive_submit", "Route me", "--metadata", "target_child=ghost")
    assert "target_child: No node is called 'ghost'." in str(refused.value)
    assert not Directive.objects.exists()
    assert not Envelope.objects.exists()

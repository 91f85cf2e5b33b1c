"""Resource bargaining at run time: leaves ask for grants, budgets hold, deferred work resumes."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from ledger.services import ledger_append, ledger_batch
from organization.genome import VsmChannelType
from organization.models import SubtreePause
from organization.selectors import champion_genome
from organization.services import genome_apply_patch, genome_bootstrap
from tests import factories
from tests.support.processes import drain_in_process
from workers.domain.bargaining import Budgets, ResourceBargain, edge_budgets
from workers.domain.messages import MessageEnvelope, PayloadType, TaskPacket
from workers.models import (
    AlgedonicSignalRecord,
    DeferredTask,
    Directive,
    Envelope,
    ResourceEpoch,
    ResourceGrant,
    Task,
)
from workers.services import leaf as leaf_module
from workers.services.bargaining import (
    current_epoch_key,
    deferred_release,
    grant_extra_tokens,
    grant_request,
    grant_usage,
    task_defer,
)
from workers.services.controller import controller_receive
from workers.services.directives import directive_submit
from workers.services.hop import Hop
from workers.services.leaf import leaf_execute
from workers.services.transport import CONTROLLER_QUEUE, LEAF_QUEUE
from workers.tasks import release_deferred

ROOT = "root-codebase-system"
SYSTEM, CODER = "metered-system", "metered-coder"
CHANNEL = f"{SYSTEM}->{CODER}:ResourceBargaining"


def metered(
    *,
    token_budget: int | None = None,
    message_budget: int | None = None,
    default_budget: int | None = None,
    task_tokens: int | None = None,
    tools: list[dict[str, Any]] | None = None,
    fixed_refs: list[str] | None = None,
) -> dict[str, Any]:
    """A batch patch: the backend subtree replaced by a metered controller and its coding leaf.

    ``add_child`` gives the new edge the standard bundle; its ResourceBargaining channel is
    then swapped for one (same id) carrying the budgets.
    """
    controller: dict[str, Any] = {"id": SYSTEM, "name": SYSTEM}
    if default_budget is not None:
        controller["system_3"] = {"default_task_budget_tokens": default_budget}
    leaf: dict[str, Any] = {
        "id": CODER,
        "name": CODER,
        "leaf_operation": {"kind": "Coding", "allows_code_write": True},
        "model": {"provider": "echo", "model": "local-echo"},
        "context_policy": {
            "max_total_task_tokens": task_tokens,
            "fixed_context_refs": fixed_refs or [],
        },
        "tools": tools or [],
    }
    channel = {
        "id": CHANNEL,
        "channel_type": "ResourceBargaining",
        "from": SYSTEM,
        "to": CODER,
        "direction": "Bidirectional",
        "max_token_budget_per_epoch": token_budget,
        "max_messages_per_epoch": message_budget,
    }
    return {
        "kind": "batch",
        "patches": [
            {"kind": "remove_subtree", "node_id": "backend-system"},
            {"kind": "add_child", "parent_id": ROOT, "child": controller},
            {"kind": "add_child", "parent_id": SYSTEM, "child": leaf},
            {"kind": "remove_channel", "channel_id": CHANNEL},
            {"kind": "add_channel", "channel": channel},
        ],
    }


def organization(**budgets: Any) -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    genome_apply_patch(patch=metered(**budgets), actor="operator:test")


def ask(tokens: int | None = None, **fields: Any) -> ResourceGrant:
    bargain = ResourceBargain(requested_by=CODER, requested_tokens=tokens, **fields)
    return grant_request(controller_node_id=SYSTEM, bargain=bargain)


def event_metadata(grant: ResourceGrant) -> dict[str, str]:
    event = LedgerEvent.objects.get(
        kind=kinds.RESOURCE_ALLOCATION_DECISION, payload__grant_id=grant.id
    )
    assert event.node_id == SYSTEM
    assert event.payload["status"] == grant.status
    return dict(event.payload["metadata"])


def submit(title: str) -> Directive:
    return directive_submit(title=title, metadata={"requires_code_write": "true"}).directive


def task_of(directive: Directive) -> Task:
    return Task.objects.get(directive_id=directive.id)


@pytest.fixture
def operator_api() -> APIClient:
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Move the clock on by whole epochs: ``later(1)`` is the next epoch."""
    real_now = timezone.now

    def move(epochs: int) -> None:
        offset = timedelta(seconds=settings.VSM_EPOCH_SECONDS * epochs)
        monkeypatch.setattr(timezone, "now", lambda: real_now() + offset)

    return move


# -- budgets and the test vectors (docs/rules/bargaining.md), through the service --------------


@pytest.mark.django_db
def test_the_edge_budgets_come_from_its_bargaining_channel_in_the_genome() -> None:
    organization(token_budget=1000, message_budget=4)
    genome = champion_genome()
    assert genome is not None

    assert edge_budgets(genome, SYSTEM, CODER) == Budgets(tokens=1000, messages=4)


@pytest.mark.django_db
def test_spec_vector_the_default_task_budget_caps_and_bad_grants_are_listed() -> None:
    organization(
        default_budget=1000,
        tools=[{"name": "fs", "permissions": ["read_filesystem"]}],
        fixed_refs=["repo://src"],
    )

    grant = ask(
        1500,
        requested_tool_permissions=["read_filesystem", "network"],
        requested_context_refs=["repo://src", "secret://prod"],
    )

    assert (grant.status, grant.requested_tokens, grant.approved_tokens) == (
        "PartiallyApproved",
        1500,
        1000,
    )
    assert grant.decision["approved_tool_permissions"] == ["read_filesystem"]
    assert grant.decision["denied_tool_permissions"] == ["network"]
    assert grant.decision["approved_context_refs"] == ["repo://src"]
    assert grant.decision["denied_context_refs"] == ["secret://prod"]
    assert grant.reasons == [
        "requested_tokens=1500 capped_to=1000 by System 3 resource policy",
        "tool_permission_denied=network",
        "context_ref_denied=secret://prod",
    ]
    metadata = event_metadata(grant)
    assert metadata["allocation_status"] == "PartiallyApproved"
    assert metadata["requested_by"] == CODER
    assert metadata["resource_epoch_key"] == current_epoch_key()
    assert "resource_epoch_budget_tokens" not in metadata  # no budget on the edge


@pytest.mark.django_db
def test_spec_vector_the_epoch_token_budget_is_shared_by_successive_requests() -> None:
    organization(default_budget=2000, token_budget=1000)

    first, second = ask(700), ask(700)

    assert (first.status, first.approved_tokens) == ("Approved", 700)
    assert event_metadata(first)["resource_epoch_remaining_after_tokens"] == "300"
    assert (second.status, second.approved_tokens) == ("PartiallyApproved", 300)
    metadata = event_metadata(second)
    assert metadata["resource_epoch_allocated_before_tokens"] == "700"
    assert metadata["resource_epoch_remaining_before_tokens"] == "300"
    assert metadata["resource_epoch_remaining_after_tokens"] == "0"
    assert metadata["resource_epoch_budget_tokens"] == "1000"
    epoch = ResourceEpoch.objects.get()
    assert (epoch.allocation_count, epoch.allocated_tokens) == (2, 1000)


@pytest.mark.django_db
def test_spec_vector_a_message_budget_of_one_denies_the_second_request() -> None:
    organization(message_budget=1)

    first, second = ask(10), ask(10)

    assert (first.status, second.status) == ("Approved", "Denied")
    assert second.reasons == ["ResourceBargaining message budget exhausted for this epoch"]
    metadata = event_metadata(second)
    assert metadata["resource_epoch_remaining_messages_before"] == "0"
    assert metadata["resource_epoch_allocation_count_before"] == "1"
    assert ResourceEpoch.objects.get().allocation_count == 1  # the denial is not counted


@pytest.mark.django_db
def test_spec_vector_three_four_homeostat_pressure_in_the_ledger_quarters_the_grant() -> None:
    organization()
    ledger_append(
        kind=kinds.THREE_FOUR_HOMEOSTAT_SIGNAL,
        node_id=SYSTEM,
        payload={
            "kind": "ResourceImbalance",
            "balance": "Conflict",
            "severity": 8,
            "source_channel": "ThreeFourHomeostat",
        },
    )

    grant = ask(800)

    assert (grant.status, grant.approved_tokens) == ("PartiallyApproved", 200)
    metadata = event_metadata(grant)
    assert (metadata["homeostat_pressure_count"], metadata["homeostat_pressure_risk"]) == (
        "1",
        "12",
    )


@pytest.mark.django_db
def test_system2_coordination_pressure_on_the_requester_halves_the_grant() -> None:
    organization()
    for node in (CODER, "someone-else"):
        ledger_append(
            kind=kinds.SYSTEM2_COORDINATION_SIGNAL,
            node_id=SYSTEM,
            payload={"kind": "Contention", "severity": 6, "target_node_id": node},
        )

    grant = ask(1000)

    assert grant.approved_tokens == 500
    metadata = event_metadata(grant)
    assert (metadata["coordination_pressure_count"], metadata["coordination_pressure"]) == (
        "1",
        "6.000",
    )


@pytest.mark.django_db
def test_a_paused_subtree_is_denied_with_the_pause_in_the_metadata() -> None:
    organization(token_budget=1000)
    pause = SubtreePause.objects.create(
        node_id=SYSTEM,
        signal_id="s-1",
        paused_at=timezone.now(),
        paused_by=ROOT,
        reason="production is down",
        severity=9,
        require_human_confirmation=True,
    )

    grant = ask(10)

    assert (grant.status, grant.approved_tokens) == ("Denied", None)
    assert grant.reasons == [
        f"ResourceBargaining denied because subtree {SYSTEM} is paused by algedonic signal: "
        "production is down"
    ]
    metadata = event_metadata(grant)
    assert {k: v for k, v in metadata.items() if k.startswith("algedonic")} == {
        "algedonic_subtree_paused": "true",
        "algedonic_paused_target_node_id": SYSTEM,
        "algedonic_paused_at": pause.paused_at.isoformat(),
        "algedonic_pause_reason": "production is down",
        "algedonic_pause_severity": "9",
        "algedonic_pause_requires_human_confirmation": "true",
    }
    assert ResourceEpoch.objects.get().allocated_tokens == 0


@pytest.mark.django_db
def test_a_redelivered_envelope_gets_its_first_grant_again() -> None:
    organization(token_budget=1000)
    bargain = ResourceBargain(requested_by=CODER, requested_tokens=400)

    first = grant_request(controller_node_id=SYSTEM, bargain=bargain, envelope_id="env-1")
    again = grant_request(controller_node_id=SYSTEM, bargain=bargain, envelope_id="env-1")

    assert again.id == first.id
    assert ResourceEpoch.objects.get().allocated_tokens == 400


@pytest.mark.django_db
def test_usage_is_recorded_once_on_the_grant_and_the_epoch() -> None:
    organization(token_budget=1000)
    grant = ask(400)

    grant_usage(grant_id=grant.id, used_tokens=321)
    grant_usage(grant_id=grant.id, used_tokens=999)  # a redelivery's report changes nothing

    grant.refresh_from_db()
    assert (grant.used_tokens, ResourceEpoch.objects.get().used_tokens) == (321, 321)


# -- the leaf asks before it works --------------------------------------------------------------


@pytest.mark.django_db
def test_without_budgets_a_leaf_is_granted_its_estimate_and_reports_what_it_used() -> None:
    genome_bootstrap(template="nested", actor="operator:test")

    directive = submit("Unmetered")
    drain_in_process()

    assert Directive.objects.get(id=directive.id).status == "completed"
    grant = ResourceGrant.objects.get()
    trace = TaskTrace.objects.get()
    assert grant.status == "Approved"
    assert grant.epoch.controller_node_id == "backend-system"
    assert grant.requested_tokens is not None and grant.requested_tokens > 0  # prompt estimate
    assert grant.used_tokens == trace.input_tokens + trace.output_tokens
    assert trace.metadata["resource_grant_id"] == grant.id
    assert "resource_epoch_budget_tokens" not in grant.metadata


@pytest.mark.django_db
def test_a_leaf_whose_delivery_lost_the_claim_reports_no_usage_and_writes_nothing() -> None:
    organization(token_budget=1000, task_tokens=600)
    submit("Metered")
    while not (pending := leaf_envelope()):
        drain_one_controller_hop()
    real_execute = leaf_module._execute

    def another_delivery_wins(*args: Any, **kwargs: Any) -> Any:
        outcome = real_execute(*args, **kwargs)
        Envelope.objects.filter(id=pending.id).update(handled_at=timezone.now(), handled_by="w2")
        return outcome

    with mock.patch.object(leaf_module, "_execute", side_effect=another_delivery_wins):
        assert leaf_execute(envelope_id=pending.id, worker="w1") == "duplicate"

    grant = ResourceGrant.objects.get()
    assert (grant.used_tokens, ResourceEpoch.objects.get().used_tokens) == (None, 0)
    assert not TaskTrace.objects.exists()
    assert Envelope.objects.get(id=pending.id).handled_by == "w2"


def leaf_envelope() -> Envelope | None:
    return Envelope.objects.filter(handled_at__isnull=True, queue=LEAF_QUEUE).first()


def drain_one_controller_hop() -> None:
    pending = Envelope.objects.filter(handled_at__isnull=True).order_by("created_at").first()
    assert pending is not None and pending.queue == CONTROLLER_QUEUE
    controller_receive(envelope_id=pending.id, worker="in-process")


@pytest.mark.django_db
def test_the_leaf_asks_for_its_task_token_limit_and_runs_within_the_budget() -> None:
    organization(token_budget=1000, task_tokens=600)

    directive = submit("Metered")
    drain_in_process()

    assert Directive.objects.get(id=directive.id).status == "completed"
    grant = ResourceGrant.objects.get()
    assert (grant.status, grant.requested_tokens, grant.approved_tokens) == ("Approved", 600, 600)
    epoch = ResourceEpoch.objects.get()
    assert (epoch.allocated_tokens, epoch.used_tokens) == (600, grant.used_tokens)


@pytest.mark.django_db
def test_an_exhausted_budget_defers_tasks_with_one_pain_signal_and_an_extra_grant_runs_them(
    operator_api: APIClient,
) -> None:
    organization(token_budget=600, task_tokens=600)
    first = submit("Fits the budget")
    drain_in_process()
    waiting = [submit("Over budget"), submit("Also over budget")]
    drain_in_process()

    assert Directive.objects.get(id=first.id).status == "completed"
    assert [task_of(d).status for d in waiting] == ["deferred_budget", "deferred_budget"]
    assert TaskTrace.objects.count() == 1  # the provider never ran for the deferred tasks
    assert {deferred.reason for deferred in DeferredTask.objects.all()} == {
        "ResourceBargaining token budget exhausted for this epoch; "
        "token request denied because effective token cap is zero"
    }
    assert LedgerEvent.objects.filter(kind=kinds.RESOURCE_TASK_DEFERRED).count() == 2
    pain = AlgedonicSignalRecord.objects.get()  # once per edge and epoch, not per task
    assert (pain.source, pain.severity, pain.target_node_id) == ("CostMonitor", 5, CODER)
    assert CODER in pain.message and "token budget exhausted" in pain.message
    assert LedgerEvent.objects.filter(kind=kinds.ALGEDONIC_ESCALATION_AT_ROOT).count() == 1

    response = operator_api.post(
        "/api/grants/",
        {"controller_node_id": SYSTEM, "requester_node_id": CODER, "tokens": 1200},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["budget_tokens"], body["remaining_tokens"]) == (1800, 1200)
    assert body["released_task_count"] == 2
    drain_in_process()

    assert [Directive.objects.get(id=d.id).status for d in waiting] == ["completed", "completed"]
    assert ResourceEpoch.objects.get().allocated_tokens == 1800
    assert AlgedonicSignalRecord.objects.count() == 1
    assert ledger_verify()[1] is None


@pytest.mark.django_db
def test_a_deferred_task_runs_once_its_epoch_has_passed(later: Any) -> None:
    organization(message_budget=1, task_tokens=100)
    submit("Spends the only message")
    drain_in_process()
    directive = submit("Waits for the next epoch")
    drain_in_process()
    assert task_of(directive).status == "deferred_budget"

    assert deferred_release() == 0  # the epoch has not passed yet
    later(1)
    assert release_deferred() == 1  # the beat task
    drain_in_process()

    assert Directive.objects.get(id=directive.id).status == "completed"
    assert DeferredTask.objects.get().released_by == "new_epoch"
    assert LedgerEvent.objects.filter(kind=kinds.RESOURCE_DEFERRED_TASK_RELEASED).count() == 1


@pytest.mark.django_db
def test_a_leaf_paused_after_its_grant_hands_the_task_back_and_uses_none_of_it() -> None:
    organization(token_budget=1000)
    directive = submit("Paused")
    from workers.models import Envelope
    from workers.services.controller import controller_receive

    for target in (ROOT, SYSTEM):
        pending = Envelope.objects.get(target_node_id=target, handled_at__isnull=True)
        controller_receive(envelope_id=pending.id, worker="in-process")
    SubtreePause.objects.create(
        node_id=CODER, signal_id="s", paused_at=timezone.now(), paused_by=SYSTEM, reason="stop"
    )

    drain_in_process()

    assert task_of(directive).status == "blocked_paused"
    assert Directive.objects.get(id=directive.id).status == "running"
    assert not TaskTrace.objects.exists()  # the leaf started nothing
    grant = ResourceGrant.objects.get()  # made by the controller as it routed the task
    assert (grant.status, grant.used_tokens) == ("Approved", 0)
    assert ResourceEpoch.objects.get().used_tokens == 0
    assert not DeferredTask.objects.exists()
    assert not AlgedonicSignalRecord.objects.exists()  # the pause is the alarm already


@pytest.mark.django_db
def test_a_task_refused_just_before_an_extra_grant_is_not_left_waiting_for_the_next_epoch() -> None:
    organization(token_budget=100)
    ask(100)
    refused = ask(100)
    grant_extra_tokens(
        controller_node_id=SYSTEM, requester_node_id=CODER, tokens=100, actor="user:operator"
    )
    genome = champion_genome()
    assert genome is not None
    incoming = MessageEnvelope(
        channel_type=VsmChannelType.RESOURCE_BARGAINING, payload_type=PayloadType.TASK_PACKET
    )

    with ledger_batch():  # the routing controller's deferral, committed after the extra grant
        deferred = task_defer(
            Hop(SYSTEM, genome, incoming),
            grant=refused,
            task=TaskPacket(id="t-late", title="late"),
        )

    assert deferred.released_by == "extra_grant"
    assert not AlgedonicSignalRecord.objects.exists()


# -- the operator's API and the beat schedule --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"controller_node_id": "ghost"}, "controller_node_id"),
        ({"requester_node_id": "ghost"}, "requester_node_id"),
        ({"controller_node_id": ROOT}, "requester_node_id"),  # a grandchild, not an edge
        ({"controller_node_id": CODER, "requester_node_id": SYSTEM}, "requester_node_id"),
        ({"tokens": 0}, "tokens"),
        ({"tokens": -5}, "tokens"),
        ({"tokens": "many"}, "tokens"),
        ({"messages": -1}, "messages"),
    ],
)
def test_a_bad_grant_gets_a_400_and_changes_nothing(
    operator_api: APIClient, body: dict[str, Any], field: str
) -> None:
    organization(token_budget=100)
    events = LedgerEvent.objects.count()

    response = operator_api.post(
        "/api/grants/",
        {"controller_node_id": SYSTEM, "requester_node_id": CODER, "tokens": 10, **body},
        format="json",
    )

    assert response.status_code == 400
    assert field in response.json()
    assert not ResourceEpoch.objects.exists()
    assert LedgerEvent.objects.count() == events


@pytest.mark.django_db
def test_anonymous_grants_are_refused() -> None:
    organization(token_budget=100)
    response = APIClient().post(
        "/api/grants/", {"controller_node_id": SYSTEM, "requester_node_id": CODER, "tokens": 1}
    )
    assert response.status_code == 401
    assert not ResourceEpoch.objects.exists()


@pytest.mark.django_db
def test_an_extra_grant_is_recorded_for_the_current_epoch_only(
    operator_api: APIClient, later: Any
) -> None:
    organization(token_budget=100)
    operator_api.post(
        "/api/grants/",
        {"controller_node_id": SYSTEM, "requester_node_id": CODER, "tokens": 50},
        format="json",
    )
    event = LedgerEvent.objects.get(kind=kinds.RESOURCE_EXTRA_GRANTED)
    assert (event.actor, event.payload["tokens"], event.payload["budget_tokens"]) == (
        "user:admin",
        50,
        150,
    )

    later(1)
    assert ask(1000).approved_tokens == 100


@pytest.mark.django_db
def test_beat_sync_declares_the_epoch_release_once_however_often_it_runs() -> None:
    call_command("beat_sync", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("beat_sync", stdout=open("/dev/null", "w"))  # noqa: SIM115

    task = PeriodicTask.objects.get(name="vsm.epochs.release_deferred")
    assert (task.task, task.queue, task.enabled) == (
        "vsm.epochs.release_deferred",
        "controllers",
        True,
    )
    assert (task.interval.every, task.interval.period) == (60, "seconds")


# -- the invariant under concurrency -----------------------------------------------------------

THREADS, REQUESTS_PER_THREAD, BUDGET, ASK = 12, 4, 1000, 150


@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_never_exceed_the_epoch_budget() -> None:
    organization(token_budget=BUDGET)
    moment = timezone.now()  # one epoch for every request, whatever the wall clock does
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            start.wait(timeout=30)
            for _ in range(REQUESTS_PER_THREAD):
                grant_request(
                    controller_node_id=SYSTEM,
                    bargain=ResourceBargain(requested_by=CODER, requested_tokens=ASK),
                    now=moment,
                )
        except BaseException as error:  # reported below, with the thread's traceback
            errors.append(error)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=hammer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    grants = ResourceGrant.objects.all()
    assert grants.count() == THREADS * REQUESTS_PER_THREAD
    approved = sum(grant.approved_tokens or 0 for grant in grants)
    assert approved == BUDGET  # demand (7200) exceeds it: all of it, and not a token more
    epoch = ResourceEpoch.objects.get()
    assert epoch.allocated_tokens == approved
    assert epoch.allocation_count == grants.exclude(status="Denied").count()
    assert LedgerEvent.objects.filter(kind=kinds.RESOURCE_ALLOCATION_DECISION).count() == (
        THREADS * REQUESTS_PER_THREAD
    )
    assert ledger_verify()[1] is None

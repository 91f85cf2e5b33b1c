"""System 3 bargains resources with its System 1 children (docs/rules/bargaining.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from organization.genome import (
    ChannelConfig,
    ChannelDirection,
    ChannelPriority,
    ContextPolicy,
    LeafOperationSpec,
    OrganizationalGenome,
    PermissionSpec,
    ToolSpec,
    ViableNode,
    VsmChannelType,
    add_child,
    genome_freeze,
    genome_is_frozen,
)
from tests.organization.strategies import channels
from tests.organization.strategies import genomes as random_genomes
from workers.domain.bargaining import (
    AllocationStatus,
    Budgets,
    CoordinationPressure,
    EpochUsage,
    PauseFacts,
    ResourceAllocationDecision,
    ResourceBargain,
    accepted_task_metadata,
    decide,
    decision_event_payload,
    decision_metadata,
    edge_budgets,
    environment_pressure_details,
    epoch_key,
    remaining_messages,
    reply_priority,
    summarise_coordination_pressure,
    summarise_environment_pressure,
    summarise_epoch_usage,
)
from workers.domain.decomposition import EnvironmentPressure
from workers.domain.messages import TaskPacket, from_json

ROOT, CODER, OTHER, GRANDCHILD = "root", "coder", "other", "grandchild"
RB = VsmChannelType.RESOURCE_BARGAINING
KEY = "2026-06-16T10:00:00Z"
DENIED, PARTIAL, APPROVED = (
    AllocationStatus.DENIED,
    AllocationStatus.PARTIALLY_APPROVED,
    AllocationStatus.APPROVED,
)


def make_genome(
    *,
    default_budget: int | None = None,
    token_budget: int | None = None,
    message_budget: int | None = None,
) -> OrganizationalGenome:
    root = ViableNode.metasystem(ROOT, id=ROOT)
    root.system_3.default_task_budget_tokens = default_budget
    genome = OrganizationalGenome.from_root(root)
    add_child(genome, ROOT, ViableNode.leaf(CODER, LeafOperationSpec.coding(), id=CODER))
    add_child(genome, ROOT, ViableNode.leaf(OTHER, LeafOperationSpec.reviewer(), id=OTHER))
    add_child(genome, OTHER, ViableNode.leaf(GRANDCHILD, LeafOperationSpec.tester(), id=GRANDCHILD))
    bargaining = next(c for c in genome.channels if c.channel_type is RB and c.to_node_id == CODER)
    bargaining.max_token_budget_per_epoch = token_budget
    bargaining.max_messages_per_epoch = message_budget
    return genome


def bargain(**fields) -> ResourceBargain:
    return ResourceBargain(requested_by=fields.pop("requested_by", CODER), **fields)


def record(decision, *, genome, usage, key=KEY, **pressures):
    """The ledger event the controller writes for a decision, as plain data."""
    budgets = edge_budgets(genome, ROOT, decision.requested_by)
    return {
        "kind": "resource_allocation_decision",
        "payload": decision_event_payload(decision),
        "metadata": decision_metadata(
            decision, epoch_key=key, budgets=budgets, usage=usage, **pressures
        ),
    }


def run_epoch(genome, bargains):
    """Decide bargains one after another, each seeing the usage the ledger recorded so far."""
    events: list[dict[str, Any]] = []
    decisions: list[ResourceAllocationDecision] = []
    for item in bargains:
        usage = summarise_epoch_usage(events, epoch_key=KEY, requested_by=item.requested_by)
        decision = decide(item, genome=genome, controller_id=ROOT, usage=usage)
        events.append(record(decision, genome=genome, usage=usage))
        decisions.append(decision)
    return decisions, events


def homeostat_event(kind="ResourceImbalance", balance="Conflict", severity=8, **extra):
    payload = {"kind": kind, "balance": balance, "severity": severity}
    payload.setdefault("source_channel", "ThreeFourHomeostat")
    payload.update(extra)
    return {"kind": "three_four_homeostat_signal", "payload": payload, "metadata": {}}


def env_event(kind, channel, severity=None, event_kind="operation_environment_signal"):
    payload = {"kind": kind, "source_channel": channel, "severity": severity}
    return {"kind": event_kind, "payload": payload, "metadata": {"source_channel": channel}}


def coordination_event(kind, severity=None, *, node=CODER, field="target_node_id", metadata=None):
    payload = {"kind": kind, "severity": severity, field: [node] if field.endswith("s") else node}
    return {"kind": "system2_coordination_signal", "payload": payload, "metadata": metadata or {}}


# -- epochs (docs/rules/bargaining.md, "Epochs") ---------------------------------------------


def test_hourly_epoch_key_is_the_top_of_the_utc_hour():
    assert epoch_key(datetime(2026, 6, 16, 10, 59, 59, 999_999, UTC)) == KEY
    assert epoch_key(datetime(2026, 6, 16, 12, 30, tzinfo=timezone(timedelta(hours=2)))) == KEY


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (900, "2026-06-16T10:30:00Z"),
        (86_400, "2026-06-16T00:00:00Z"),
        (2400, "2026-06-16T10:40:00Z"),
    ],
)
def test_other_epoch_lengths_align_to_multiples_since_the_unix_epoch(seconds, expected):
    assert (
        epoch_key(datetime(2026, 6, 16, 10, 42, 7, tzinfo=UTC), epoch_seconds=seconds) == expected
    )


def test_epoch_key_refuses_naive_times_and_empty_epochs():
    with pytest.raises(ValueError, match="timezone-aware"):
        epoch_key(datetime(2026, 6, 16, 10))
    with pytest.raises(ValueError, match="positive"):
        epoch_key(datetime(2026, 6, 16, 10, tzinfo=UTC), epoch_seconds=0)


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(1, 10 * 86_400),
)
def test_a_moment_lies_inside_the_epoch_its_key_names(moment, seconds):
    start = datetime.strptime(epoch_key(moment, epoch_seconds=seconds), "%Y-%m-%dT%H:%M:%SZ")
    start = start.replace(tzinfo=UTC)
    assert start <= moment < start + timedelta(seconds=seconds)
    assert int(start.timestamp()) % seconds == 0


def test_the_standard_bundle_sets_no_budgets():
    assert edge_budgets(make_genome(), ROOT, CODER) == Budgets(tokens=None, messages=None)


@pytest.mark.parametrize("frozen", [False, True], ids=["walked", "frozen: indexed"])
def test_budgets_are_the_smallest_over_bargaining_channels_either_way_round(frozen):
    genome = make_genome(token_budget=1000, message_budget=5)
    genome.channels += [
        ChannelConfig(
            channel_type=RB,
            from_node_id=CODER,
            to_node_id=ROOT,
            direction=ChannelDirection.CHILD_TO_PARENT,
            max_token_budget_per_epoch=600,
        ),
        ChannelConfig(
            channel_type=VsmChannelType.COMMAND,
            from_node_id=ROOT,
            to_node_id=CODER,
            direction=ChannelDirection.PARENT_TO_CHILD,
            max_messages_per_epoch=1,
            max_token_budget_per_epoch=1,
        ),
        ChannelConfig(
            channel_type=RB,
            from_node_id=ROOT,
            to_node_id=OTHER,
            direction=ChannelDirection.BIDIRECTIONAL,
            max_messages_per_epoch=1,
        ),
    ]
    if frozen:
        genome_freeze(genome)

    assert genome_is_frozen(genome) is frozen
    assert edge_budgets(genome, ROOT, CODER) == Budgets(tokens=600, messages=5)
    assert edge_budgets(genome, ROOT, OTHER) == Budgets(tokens=None, messages=1)


def walked_budgets(genome: OrganizationalGenome, controller_id: str, requester_id: str) -> Budgets:
    """The plain computation: every channel of the genome looked at."""
    ends = {(controller_id, requester_id), (requester_id, controller_id)}
    found = [
        c
        for c in genome.channels
        if c.channel_type is RB and (c.from_node_id, c.to_node_id) in ends
    ]
    tokens = [
        c.max_token_budget_per_epoch for c in found if c.max_token_budget_per_epoch is not None
    ]
    messages = [c.max_messages_per_epoch for c in found if c.max_messages_per_epoch is not None]
    return Budgets(tokens=min(tokens, default=None), messages=min(messages, default=None))


budget_values = st.none() | st.integers(0, 5_000)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_genomes(), st.data())
def test_a_frozen_genomes_edge_budgets_are_the_walks_over_all_its_channels(genome, data):
    endpoints = st.sampled_from(list(genome.nodes))
    extra = data.draw(st.lists(channels(endpoints), max_size=6))
    genome.channels.extend(extra)
    for channel in genome.channels:  # budgets on the bundles and the extras alike
        channel.max_token_budget_per_epoch = data.draw(budget_values)
        channel.max_messages_per_epoch = data.draw(budget_values)
    expected = {
        (one, other): walked_budgets(genome, one, other)
        for one in genome.nodes
        for other in genome.nodes
    }

    genome_freeze(genome)

    assert genome_is_frozen(genome)
    for (one, other), budgets in expected.items():
        assert edge_budgets(genome, one, other) == budgets, (one, other)


def test_epoch_usage_counts_granted_decisions_of_this_requester_and_epoch():
    def event(status, tokens, *, key=KEY, by=CODER, kind="resource_allocation_decision"):
        metadata = {"resource_epoch_key": key, "requested_by": by, "allocation_status": status}
        if tokens is not None:
            metadata["resource_epoch_approved_tokens"] = str(tokens)
        return {"kind": kind, "payload": {"approved_tokens": 7}, "metadata": metadata}

    events = [
        event("Approved", 100),
        event("PartiallyApproved", None),  # falls back to the payload's approved_tokens
        event("Denied", 0),
        event("Approved", 50, key="2026-06-16T09:00:00Z"),
        event("Approved", 50, by=OTHER),
        event("Approved", 50, kind="resource_bargain_work_accepted"),
    ]
    assert summarise_epoch_usage(events, epoch_key=KEY, requested_by=CODER) == EpochUsage(
        allocation_count=2, allocated_tokens=107
    )


# -- decision procedure, steps 0-5 (docs/rules/bargaining.md, "Decision procedure") ----------


def test_step0_a_task_id_that_contradicts_the_proposed_task_is_denied():
    task = TaskPacket(id="t-1", title="x")
    decision = decide(
        bargain(
            task_id="t-2",
            proposed_task=task,
            requested_tokens=10,
            requested_tool_permissions=["git"],
            requested_context_refs=["repo://a"],
        ),
        genome=make_genome(),
        controller_id=ROOT,
    )

    assert decision.status is DENIED
    assert decision.task_id == "t-2"
    assert decision.reasons == ["resource bargain task_id t-2 does not match proposed_task id t-1"]
    assert decision.denied_tool_permissions == ["git"]
    assert decision.denied_context_refs == ["repo://a"]
    assert decision.approved_tokens is None


def test_step0_a_missing_task_id_is_taken_from_the_proposed_task():
    decision = decide(
        bargain(proposed_task=TaskPacket(id="t-1", title="x"), requested_tokens=10),
        genome=make_genome(),
        controller_id=ROOT,
    )
    assert decision.task_id == "t-1"
    assert decision.status is APPROVED


def test_step1_a_paused_subtree_gets_nothing():
    pause = PauseFacts(
        target_node_id=ROOT, paused_at=datetime(2026, 6, 16, 9, tzinfo=UTC), reason="prod down"
    )
    decision = decide(
        bargain(requested_tokens=10), genome=make_genome(), controller_id=ROOT, pause=pause
    )
    assert decision.status is DENIED
    assert decision.reasons == [
        "ResourceBargaining denied because subtree root is paused by algedonic signal: prod down"
    ]


@pytest.mark.parametrize(
    ("controller_id", "requested_by", "reason"),
    [
        ("ghost", CODER, "controller node unavailable: node 'ghost' does not exist in the genome"),
        (ROOT, "ghost", "requesting node unavailable: node 'ghost' does not exist in the genome"),
        (
            ROOT,
            GRANDCHILD,
            "requesting node is not a direct System 1 child of this System 3 controller",
        ),
    ],
)
def test_step2_and_3_only_an_existing_direct_child_may_bargain(controller_id, requested_by, reason):
    decision = decide(
        bargain(requested_by=requested_by, requested_tokens=10),
        genome=make_genome(),
        controller_id=controller_id,
    )
    assert (decision.status, decision.reasons) == (DENIED, [reason])


def test_step4_a_controller_without_budget_authority_denies():
    genome = make_genome()
    genome.nodes[ROOT].system_3.can_allocate_budget = False
    decision = decide(bargain(requested_tokens=10), genome=genome, controller_id=ROOT)
    assert decision.reasons == ["System 3 resource allocation disabled by genome policy"]


def test_spec_vector_message_budget_of_one_denies_the_second_request():
    genome = make_genome(message_budget=1)
    decisions, events = run_epoch(genome, [bargain(requested_tokens=10)] * 2)

    assert [d.status for d in decisions] == [APPROVED, DENIED]
    assert decisions[1].reasons == ["ResourceBargaining message budget exhausted for this epoch"]
    second = events[1]["metadata"]
    assert second["resource_epoch_remaining_messages_before"] == "0"
    assert second["resource_epoch_remaining_messages_after"] == "0"
    assert second["resource_epoch_allocation_count_before"] == "1"


def test_denied_requests_do_not_use_up_the_message_budget():
    # Better than the reference (docs/rules/bargaining.md): there, the first (denied) request
    # would have spent the only message of the epoch and the second would be denied too.
    genome = make_genome(message_budget=1)
    genome.nodes[CODER].permissions.denied_tools = ["network"]
    decisions, events = run_epoch(
        genome, [bargain(requested_tool_permissions=["network"]), bargain(requested_tokens=10)]
    )

    assert [d.status for d in decisions] == [DENIED, APPROVED]
    first = events[0]["metadata"]
    assert first["resource_epoch_allocation_count_after"] == "0"
    assert first["resource_epoch_remaining_messages_after"] == "1"
    assert events[1]["metadata"]["resource_epoch_remaining_messages_before"] == "1"


# -- decision procedure, step 6, tokens (docs/rules/bargaining.md) ----------------------------


def test_spec_vector_default_budget_caps_tokens_and_bad_grants_are_listed():
    genome = make_genome(default_budget=1000)
    genome.nodes[CODER].tools = [ToolSpec(name="fs", permissions=["read_filesystem"])]
    genome.nodes[CODER].context_policy = ContextPolicy(fixed_context_refs=["repo://src"])
    decision = decide(
        bargain(
            requested_tokens=1500,
            requested_tool_permissions=["read_filesystem", "network"],
            requested_context_refs=["repo://src", "secret://prod"],
        ),
        genome=genome,
        controller_id=ROOT,
    )

    assert decision.status is PARTIAL
    assert decision.approved_tokens == 1000
    assert decision.approved_tool_permissions == ["read_filesystem"]
    assert decision.denied_tool_permissions == ["network"]
    assert decision.approved_context_refs == ["repo://src"]
    assert decision.denied_context_refs == ["secret://prod"]
    assert decision.reasons == [
        "requested_tokens=1500 capped_to=1000 by System 3 resource policy",
        "tool_permission_denied=network",
        "context_ref_denied=secret://prod",
    ]
    assert decision.allocation_policy == "system3_genome_resource_policy_v1"


def test_spec_vector_epoch_token_budget_is_shared_by_successive_requests():
    genome = make_genome(default_budget=2000, token_budget=1000)
    decisions, events = run_epoch(genome, [bargain(requested_tokens=700)] * 2)

    first, second = decisions
    assert (first.status, first.approved_tokens) == (APPROVED, 700)
    assert first.reasons == ["resource bargain approved within System 3 policy"]
    assert events[0]["metadata"]["resource_epoch_remaining_after_tokens"] == "300"

    assert (second.status, second.approved_tokens) == (PARTIAL, 300)
    assert second.reasons == [
        "requested_tokens=700 capped_to=300 by ResourceBargaining epoch budget",
        "requested_tokens=700 capped_to=300 by System 3 resource policy",
    ]
    metadata = events[1]["metadata"]
    assert metadata["resource_epoch_allocated_before_tokens"] == "700"
    assert metadata["resource_epoch_remaining_before_tokens"] == "300"
    assert metadata["resource_epoch_remaining_after_tokens"] == "0"
    assert metadata["resource_epoch_budget_tokens"] == "1000"


def test_an_exhausted_token_budget_grants_no_tokens():
    genome = make_genome(token_budget=1000)
    usage = EpochUsage(allocation_count=2, allocated_tokens=1000)
    decision = decide(bargain(requested_tokens=5), genome=genome, controller_id=ROOT, usage=usage)

    assert (decision.status, decision.approved_tokens) == (DENIED, None)
    assert decision.reasons == [
        "ResourceBargaining token budget exhausted for this epoch",
        "token request denied because effective token cap is zero",
    ]


def test_the_requesters_own_task_token_limit_caps_too():
    genome = make_genome(default_budget=1000)
    genome.nodes[CODER].context_policy.max_total_task_tokens = 400
    decision = decide(bargain(requested_tokens=500), genome=genome, controller_id=ROOT)
    assert decision.approved_tokens == 400


def test_spec_vector_three_four_conflict_quarters_the_request():
    pressure = summarise_environment_pressure([homeostat_event()])
    assert (pressure.risk, pressure.max_severity, pressure.homeostat_count) == (12.0, 8, 1)

    decision = decide(
        bargain(requested_tokens=800),
        genome=make_genome(),
        controller_id=ROOT,
        environment=pressure,
    )
    assert (decision.status, decision.approved_tokens) == (PARTIAL, 200)
    assert decision.reasons == [
        "requested_tokens=800 capped_to=200 by Three-Four homeostat resource pressure",
        "requested_tokens=800 capped_to=200 by System 3 resource policy",
    ]


def test_milder_homeostat_pressure_halves_and_weak_pressure_does_nothing():
    halving = EnvironmentPressure(event_count=1, homeostat_count=1, risk=8.0, max_severity=7)
    weak = EnvironmentPressure(event_count=1, homeostat_count=1, risk=6.5, max_severity=9)
    grants = [
        decide(
            bargain(requested_tokens=801),
            genome=make_genome(),
            controller_id=ROOT,
            environment=pressure,
        ).approved_tokens
        for pressure in (halving, weak)
    ]
    assert grants == [400, 801]


def test_system2_pressure_caps_only_when_it_lowers_the_cap():
    coordination = CoordinationPressure(
        event_count=1, contention_count=1, pressure=6, max_severity=6
    )
    decision = decide(
        bargain(requested_tokens=1000),
        genome=make_genome(default_budget=300),
        controller_id=ROOT,
        coordination=coordination,
    )
    assert decision.approved_tokens == 300
    assert not any("System 2" in reason for reason in decision.reasons)

    decision = decide(
        bargain(requested_tokens=1000),
        genome=make_genome(),
        controller_id=ROOT,
        coordination=coordination,
    )
    assert decision.approved_tokens == 500
    assert decision.reasons[0] == (
        "requested_tokens=1000 capped_to=500 by System 2 coordination pressure"
    )


def test_a_pressure_cap_never_drops_below_one_token():
    coordination = CoordinationPressure(
        event_count=1, contention_count=1, pressure=9, max_severity=9
    )
    decision = decide(
        bargain(requested_tokens=3),
        genome=make_genome(),
        controller_id=ROOT,
        coordination=coordination,
    )
    assert decision.approved_tokens == 1


# -- steps 7-9, permissions, refs and status (docs/rules/bargaining.md) -----------------------


@pytest.mark.parametrize(
    ("permissions", "tools", "asked", "allowed"),
    [
        (PermissionSpec(), [], "anything", True),
        (PermissionSpec(denied_tools=["git"]), [], "git", False),
        (PermissionSpec(allowed_tools=["git"]), [ToolSpec(name="shell")], "git", True),
        (PermissionSpec(allowed_tools=["git"]), [], "shell", False),
        (PermissionSpec(allowed_tools=["git"], denied_tools=["git"]), [], "git", False),
        (PermissionSpec(), [ToolSpec(name="shell")], "shell", True),
        (PermissionSpec(), [ToolSpec(name="fs", permissions=["write"])], "write", True),
        (PermissionSpec(), [ToolSpec(name="shell", enabled=False)], "shell", False),
        (PermissionSpec(), [ToolSpec(name="shell")], "git", False),
    ],
)
def test_step7_tool_permissions(permissions, tools, asked, allowed):
    genome = make_genome()
    genome.nodes[CODER].permissions = permissions
    genome.nodes[CODER].tools = tools
    decision = decide(
        bargain(requested_tool_permissions=[asked]), genome=genome, controller_id=ROOT
    )
    assert decision.status is (APPROVED if allowed else DENIED)


@pytest.mark.parametrize(
    ("policy", "asked", "allowed"),
    [
        (ContextPolicy(), "secret://prod", True),
        (ContextPolicy(fixed_context_refs=["repo://a"]), "repo://a", True),
        (ContextPolicy(retrievable_context_refs=["docs://b"]), "docs://b", True),
        (ContextPolicy(retrievable_context_refs=["docs://b"]), "repo://a", False),
    ],
)
def test_step8_context_refs(policy, asked, allowed):
    genome = make_genome()
    genome.nodes[CODER].context_policy = policy
    decision = decide(bargain(requested_context_refs=[asked]), genome=genome, controller_id=ROOT)
    assert decision.status is (APPROVED if allowed else DENIED)
    assert decision.reasons[-1:] == (
        ["resource bargain approved within System 3 policy"]
        if allowed
        else [f"context_ref_denied={asked}"]
    )


def test_step9_an_empty_request_is_denied():
    decision = decide(bargain(), genome=make_genome(), controller_id=ROOT)
    assert (decision.status, decision.reasons) == (
        DENIED,
        ["no concrete resource request supplied"],
    )


def test_zero_tokens_asked_are_zero_tokens_granted():
    decision = decide(bargain(requested_tokens=0), genome=make_genome(), controller_id=ROOT)
    assert (decision.status, decision.approved_tokens) == (APPROVED, 0)


def test_a_negative_token_request_cannot_be_built():
    with pytest.raises(ValueError, match="must not be negative"):
        bargain(requested_tokens=-1)


# -- System 2 coordination pressure (docs/rules/bargaining.md, "System 2 pressure") ----------


def test_coordination_pressure_weighs_kinds_and_reads_severity_fallbacks():
    events = [
        coordination_event("Contention", 6),
        coordination_event("Oscillation", metadata={"severity": "4"}),  # metadata severity
        coordination_event("DependencyBlocked", None, field="affected_node_ids"),  # default 1
        coordination_event("Contention", 42, field="source_node_id"),  # capped at 10
        coordination_event("DependencyReady", 9),  # not a pressure kind
        coordination_event("Contention", 9, node=OTHER),  # about someone else
        {"kind": "system2_dampening_task_created", "payload": {"target_node_id": CODER}},
    ]
    pressure = summarise_coordination_pressure(events, CODER)

    assert (pressure.event_count, pressure.contention_count) == (4, 2)
    assert (pressure.oscillation_count, pressure.dependency_blocked_count) == (1, 1)
    assert pressure.pressure == 6 + 5 + 0.75 + 10
    assert pressure.max_severity == 10
    assert pressure.reasons == (
        "system2_coordination kind=Contention severity=6",
        "system2_coordination kind=Oscillation severity=4",
        "system2_coordination kind=DependencyBlocked severity=1",
        "system2_coordination kind=Contention severity=10",
    )
    assert pressure.affects_allocation
    assert pressure.token_cap(1000) == 250


def test_kind_may_come_from_metadata_and_reasons_stop_at_eight():
    event = coordination_event(None, 1, metadata={"coordination_kind": "Contention"})
    pressure = summarise_coordination_pressure([event] * 10, CODER)
    assert (pressure.event_count, pressure.pressure, len(pressure.reasons)) == (10, 10.0, 8)
    assert pressure.affects_allocation  # pressure ≥ 8 even though every severity is low


@pytest.mark.parametrize(
    ("pressure", "cap"),
    [
        (CoordinationPressure(), None),
        (CoordinationPressure(event_count=1, pressure=4, max_severity=4), None),
        (CoordinationPressure(event_count=1, pressure=5, max_severity=5), 500),
        (
            CoordinationPressure(event_count=2, oscillation_count=2, pressure=10, max_severity=4),
            250,
        ),
        (CoordinationPressure(event_count=3, pressure=16, max_severity=6), 250),
    ],
)
def test_coordination_token_cap(pressure, cap):
    assert pressure.token_cap(1000) == cap


# -- environment pressure (docs/rules/bargaining.md, "Environment pressure") -----------------


def test_environment_pressure_reads_kinds_channels_and_balances():
    events = [
        env_event("Risk", "FutureProbeToEnvironment", 4, "future_probe_environment_signal"),
        env_event("Opportunity", "FutureProbeToEnvironment", 2, "future_probe_environment_signal"),
        env_event("Opportunity", "EnvironmentToEnvironment", 10, "environment_interaction_signal"),
        env_event("UserFeedback", "OperationToEnvironment"),  # severity absent: 1
        env_event("DependencyChange", "OperationToEnvironment", 4),
        env_event("CapabilityChange", "OperationToEnvironment", 0),  # weighs 1, max stays
        homeostat_event("FutureOpportunity", "FutureDominant", 2),
        homeostat_event("CoordinationDebt", "Balanced", 99),  # capped at 10
        homeostat_event("CapabilityGap", "PresentDominant", 2, source_channel="Audit"),
        env_event("Risk", "OperationToEnvironment", 9, "environment_signal"),  # not summarised
    ]
    details = environment_pressure_details(events)
    pressure = details.pressure

    assert pressure.event_count == 9
    assert pressure.homeostat_count == 3
    assert pressure.max_severity == 10
    assert pressure.risk == pytest.approx(4 + 3.5 + 3 + 10)
    assert pressure.opportunity == pytest.approx(1.4 + 2 + 10 + 0.75 + 2 + 1 + 2)
    assert pressure.feedback == pytest.approx(1 + 2.5)
    assert (details.future_probe_count, details.interaction_count) == (2, 1)
    assert details.reasons[:2] == (
        "environment_signal channel=FutureProbeToEnvironment kind=Risk severity=4",
        "environment_signal channel=FutureProbeToEnvironment kind=Opportunity severity=2",
    )
    assert len(details.reasons) == 8
    assert details.as_json()["environment_interaction_count"] == 1


def test_the_source_channel_falls_back_to_metadata_then_unknown():
    event = {"kind": "operation_environment_signal", "payload": {}, "metadata": {}}
    details = environment_pressure_details([event])
    assert details.reasons == ("environment_signal channel=Unknown kind=Observation severity=1",)
    assert (details.pressure.risk, details.pressure.opportunity) == (0.0, 0.0)


# -- outputs (docs/rules/bargaining.md, "Outputs") -------------------------------------------


def test_event_and_reply_metadata_carry_epoch_pressure_and_pause_keys():
    genome = make_genome(token_budget=1000, message_budget=3)
    environment = summarise_environment_pressure([homeostat_event()])
    coordination = summarise_coordination_pressure([coordination_event("Oscillation", 5)], CODER)
    usage = EpochUsage(allocation_count=1, allocated_tokens=100)
    decision = decide(
        bargain(requested_tokens=800),
        genome=genome,
        controller_id=ROOT,
        usage=usage,
        environment=environment,
        coordination=coordination,
    )
    context: dict[str, Any] = {
        "epoch_key": KEY,
        "budgets": edge_budgets(genome, ROOT, CODER),
        "usage": usage,
        "environment": environment,
        "coordination": coordination,
    }
    event = decision_metadata(decision, **context)
    reply = decision_metadata(decision, **context, for_reply=True)

    assert event == {
        "allocation_status": "PartiallyApproved",
        "coordination_contention_count": "0",
        "coordination_dependency_blocked_count": "0",
        "coordination_max_severity": "5",
        "coordination_oscillation_count": "1",
        "coordination_pressure": "6.250",
        "coordination_pressure_count": "1",
        "coordination_pressure_reasons": "system2_coordination kind=Oscillation severity=5",
        "homeostat_pressure_count": "1",
        "homeostat_pressure_max_severity": "8",
        "homeostat_pressure_risk": "12",
        "requested_by": CODER,
        "resource_epoch_allocated_before_tokens": "100",
        "resource_epoch_allocation_count_after": "2",
        "resource_epoch_allocation_count_before": "1",
        "resource_epoch_approved_tokens": "200",
        "resource_epoch_budget_tokens": "1000",
        "resource_epoch_key": KEY,
        "resource_epoch_message_budget": "3",
        "resource_epoch_remaining_after_tokens": "700",
        "resource_epoch_remaining_before_tokens": "900",
        "resource_epoch_remaining_messages_after": "1",
        "resource_epoch_remaining_messages_before": "2",
        "source_channel": "ResourceBargaining",
    }
    assert list(event) == sorted(event)
    expected_reply = {k: v for k, v in event.items() if k not in ("source_channel", "requested_by")}
    del expected_reply["homeostat_pressure_risk"]
    assert reply == {**expected_reply, "allocation_policy": "system3_genome_resource_policy_v1"}


def test_a_paused_denial_carries_the_pause_in_its_metadata():
    pause = PauseFacts(
        target_node_id=CODER,
        paused_at=datetime(2026, 6, 16, 9, 5, tzinfo=UTC),
        reason="algedonic pause_subtree",
        severity=9,
        require_human_confirmation=True,
    )
    decision = decide(
        bargain(requested_tokens=1), genome=make_genome(), controller_id=ROOT, pause=pause
    )
    metadata = decision_metadata(
        decision, epoch_key=KEY, budgets=Budgets(), usage=EpochUsage(), pause=pause, for_reply=True
    )

    assert {k: v for k, v in metadata.items() if k.startswith("algedonic")} == {
        "algedonic_subtree_paused": "true",
        "algedonic_paused_target_node_id": CODER,
        "algedonic_paused_at": "2026-06-16T09:05:00+00:00",
        "algedonic_pause_reason": "algedonic pause_subtree",
        "algedonic_pause_severity": "9",
        "algedonic_pause_requires_human_confirmation": "true",
    }
    assert metadata["resource_epoch_approved_tokens"] == "0"
    assert "resource_epoch_budget_tokens" not in metadata
    assert "homeostat_pressure_count" not in metadata
    assert "coordination_pressure" not in metadata


def test_only_a_full_approval_replies_at_normal_priority():
    statuses = {
        status: reply_priority(ResourceAllocationDecision(requested_by=CODER, status=status))
        for status in AllocationStatus
    }
    assert statuses == {
        APPROVED: ChannelPriority.NORMAL,
        PARTIAL: ChannelPriority.HIGH,
        DENIED: ChannelPriority.HIGH,
    }


def test_the_decision_travels_as_json_and_back():
    decision = decide(
        bargain(requested_tokens=5, requested_tool_permissions=["git"]),
        genome=make_genome(),
        controller_id=ROOT,
        now=datetime(2026, 6, 16, 10, tzinfo=UTC),
    )
    payload = decision_event_payload(decision)
    assert payload["status"] == "Approved"
    assert payload["created_at"] == "2026-06-16T10:00:00.000000Z"
    assert from_json(ResourceAllocationDecision, payload) == decision


def test_an_accepted_task_is_annotated_with_the_grant():
    genome = make_genome(default_budget=100)
    genome.nodes[CODER].permissions.denied_tools = ["network"]
    decision = decide(
        bargain(
            requested_tokens=500,
            requested_tool_permissions=["git", "network"],
            requested_context_refs=["repo://a", "repo://b"],
        ),
        genome=genome,
        controller_id=ROOT,
    )
    metadata = accepted_task_metadata(
        decision,
        controller_id=ROOT,
        request_message_id="m-1",
        correlation_id="c-1",
        epoch_key=KEY,
        budgets=Budgets(),
        usage=EpochUsage(),
    )

    assert decision.accepts_work
    assert {k: v for k, v in metadata.items() if not k.startswith("resource_epoch")} == {
        "resource_bargain_status": "PartiallyApproved",
        "resource_bargain_policy": "system3_genome_resource_policy_v1",
        "resource_bargain_request_message_id": "m-1",
        "resource_bargain_correlation_id": "c-1",
        "resource_bargain_approved_tokens": "100",
        "resource_bargain_approved_tool_permissions": "git",
        "resource_bargain_denied_tool_permissions": "network",
        "resource_bargain_approved_context_refs": "repo://a,repo://b",
        "routed_by": ROOT,
        "routing_reason": "accepted through ResourceBargaining allocation",
    }
    assert metadata["resource_epoch_approved_tokens"] == "100"


# -- properties --------------------------------------------------------------------------------

optional_budget = st.none() | st.integers(0, 5000)
names = st.lists(st.sampled_from(["git", "shell", "network", "fs"]), max_size=4)
refs = st.lists(st.sampled_from(["repo://a", "repo://b", "secret://c"]), max_size=3)
bargains = st.builds(
    ResourceBargain,
    requested_by=st.sampled_from([CODER, CODER, OTHER, GRANDCHILD, "ghost"]),
    requested_tokens=st.none() | st.integers(0, 10_000),
    requested_tool_permissions=names,
    requested_context_refs=refs,
)


@st.composite
def genomes(draw):
    genome = make_genome(
        default_budget=draw(optional_budget),
        token_budget=draw(optional_budget),
        message_budget=draw(st.none() | st.integers(0, 4)),
    )
    genome.nodes[CODER].permissions.denied_tools = draw(names)
    genome.nodes[CODER].context_policy.retrievable_context_refs = draw(refs)
    return genome


@given(genomes(), st.lists(bargains, max_size=8))
def test_an_epoch_never_grants_more_than_its_budgets(genome, requests):
    _, events = run_epoch(genome, requests)
    budgets = edge_budgets(genome, ROOT, CODER)
    usage = summarise_epoch_usage(events, epoch_key=KEY, requested_by=CODER)

    if budgets.tokens is not None:
        assert usage.allocated_tokens <= budgets.tokens
    if budgets.messages is not None:
        assert usage.allocation_count <= budgets.messages
        assert remaining_messages(budgets, usage) == budgets.messages - usage.allocation_count


@given(genomes(), bargains, st.integers(0, 3), st.integers(0, 3000))
def test_a_decision_accounts_for_every_item_asked(genome, request, count, allocated):
    usage = EpochUsage(allocation_count=count, allocated_tokens=allocated)
    decision = decide(request, genome=genome, controller_id=ROOT, usage=usage)

    assert sorted(decision.approved_tool_permissions + decision.denied_tool_permissions) == sorted(
        request.requested_tool_permissions
    )
    assert sorted(decision.approved_context_refs + decision.denied_context_refs) == sorted(
        request.requested_context_refs
    )
    granted = decision.approved_tokens
    if granted is not None:
        assert request.requested_tokens is not None
        assert 0 <= granted <= request.requested_tokens
    if decision.status is APPROVED:
        assert not decision.denied_tool_permissions and not decision.denied_context_refs
        assert granted == request.requested_tokens
    if decision.status is DENIED:
        assert granted is None
        assert not decision.approved_tool_permissions and not decision.approved_context_refs
    assert decision.reasons

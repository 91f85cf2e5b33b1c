"""Trial routing end to end in this process: which genome each task runs under, what the
candidate's leaf does, where shadow results stop, and what the trials app is told."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from ledger import kinds
from ledger.models import LedgerEvent, TaskTrace
from ledger.selectors import ledger_verify
from organization.models import LiveTrial
from organization.selectors import champion_version_id
from organization.services import (
    genome_bootstrap,
    genome_candidate_create,
    live_trial_close,
    live_trial_open,
)
from tests import factories
from tests.support.processes import drain_in_process
from workers.domain.algedonic import AlgedonicSignal, OverridePolicy, Valence
from workers.domain.trial_routing import exposure_bucket
from workers.models import AlgedonicSignalRecord, Directive, Envelope, Task
from workers.services.algedonic import signal_raise
from workers.services.delivery import envelope_deliver
from workers.services.directives import directive_submit

pytestmark = pytest.mark.django_db

ROOT, CODER = "root-codebase-system", "primary-code-service"
SYSTEM, BACKEND_CODER = "backend-system", "backend-coder"
REVIEWER = "review-probation-leaf"
TRIAL = "s-1"
CODE = {"requires_code_write": "true"}
RULE = "CANDIDATE RULE: name the trial in every answer"

PROMPT_PATCH = {
    "kind": "add_prompt_component",
    "node_id": CODER,
    "section": "BehaviorRules",
    "component": {"text": RULE},
}


def leaf(
    node_id: str, *, reviewer: bool = False, metadata: dict[str, str] | None = None
) -> dict[str, Any]:
    operation = (
        {"kind": "Reviewing", "allows_review": True, "allows_filesystem_read": True}
        if reviewer
        else {"kind": "Coding", "allows_code_write": True}
    )
    provider = "scripted" if metadata else "echo"
    metadata = metadata or {}
    return {
        "id": node_id,
        "name": node_id,
        "leaf_operation": operation,
        "model": {"provider": provider, "model": f"{provider}-model"},
        "metadata": metadata,
    }


REVIEWER_PATCH = {"kind": "add_child", "parent_id": ROOT, "child": leaf(REVIEWER, reviewer=True)}


def trial(
    patch: dict[str, Any],
    *,
    mode: str,
    template: str = "single",
    controller: str = ROOT,
    share: int | None = None,
    **limits: Any,
) -> str:
    """Bootstrap the champion, store the candidate and open its live trial; the candidate's id."""
    genome_bootstrap(template=template, actor="operator:test")
    base = champion_version_id()
    assert base is not None
    candidate = genome_candidate_create(
        base_version_id=base, patch=patch, suggestion_id=TRIAL, actor="operator:test"
    )
    live_trial_open(
        controller_node_id=controller,
        trial_id=TRIAL,
        candidate_version_id=candidate.id,
        base_version_id=base,
        mode=mode,
        traffic_share_basis_points=share,
        requires_approval=limits.pop("requires_approval", False),
        max_tasks=limits.pop("max_tasks", None),
        max_token_budget=limits.pop("max_token_budget", None),
        max_files_touched=limits.pop("max_files_touched", None),
        allowed_task_classes=limits.pop("allowed_task_classes", []),
    )
    assert not limits, limits
    return candidate.id


def submit(title: str = "Do it", risk: str = "Medium", **metadata: str) -> Directive:
    directive = directive_submit(title=title, risk=risk, metadata={**CODE, **metadata}).directive
    drain_in_process()
    return directive


def tasks_to(node_id: str) -> list[Envelope]:
    return list(
        Envelope.objects.filter(target_node_id=node_id, payload_type="vsm.task_packet").order_by(
            "created_at"
        )
    )


def genomes_to(node_id: str) -> list[str | None]:
    return [envelope.genome_id for envelope in tasks_to(node_id)]


def events_of(kind: str) -> list[LedgerEvent]:
    return list(LedgerEvent.objects.filter(kind=kind).order_by("seq"))


def live() -> LiveTrial:
    return LiveTrial.objects.get(trial_id=TRIAL)


def status(directive: Directive) -> str:
    return Directive.objects.get(id=directive.id).status


# -- control routes -----------------------------------------------------------------


def test_a_probation_task_without_approval_runs_on_the_champion() -> None:
    trial(PROMPT_PATCH, mode="probation")
    directive = submit()

    assert genomes_to(CODER) == [champion_version_id()]
    [envelope] = tasks_to(CODER)
    assert "trial_id" not in envelope.payload["metadata"]
    assert events_of(kinds.TRIAL_TASK_ROUTED) == []
    assert events_of(kinds.TRIAL_ROUTE_FALLBACK) == []  # nobody asked for the trial
    assert live().routed_tasks == 0
    assert status(directive) == "completed"
    assert RULE not in Task.objects.get(directive=directive).result_summary


def test_an_approved_probation_task_runs_under_the_candidate_and_its_mutation_takes_effect() -> (
    None
):
    candidate = trial(PROMPT_PATCH, mode="probation")
    directive = submit(trial_approved="true")

    assert genomes_to(CODER) == [candidate]
    [envelope] = tasks_to(CODER)
    bucket = str(exposure_bucket(envelope.payload["id"], TRIAL))
    tags = {
        "trial_id": TRIAL,
        "related_suggestion_id": TRIAL,
        "candidate_genome_id": candidate,
        "trial_mode": "probation",
        "trial_route_role": "control",
        "trial_exposure_basis_points": "",
        "trial_exposure_bucket": bucket,
        "trial_controller_node_id": ROOT,
    }
    assert tags.items() <= envelope.payload["metadata"].items()
    assert envelope.payload["metadata"]["routing_reason"].startswith(f"trial {TRIAL}: ")
    [routed] = events_of(kinds.TRIAL_TASK_ROUTED)
    assert (routed.trial_id, routed.suggestion_id, routed.task_id) == (
        TRIAL,
        TRIAL,
        envelope.payload["id"],
    )
    assert routed.payload == {
        "trial_id": TRIAL,
        "task_id": envelope.payload["id"],
        "child_node_id": CODER,
        "candidate_genome_id": candidate,
        "is_shadow_route": False,
        "trial_mode": "probation",
        "trial_route_role": "control",
        "exposure_basis_points": None,
        "exposure_bucket": int(bucket),
    }
    # The leaf ran under the candidate: its prompt carries the candidate's rule.
    trace = TaskTrace.objects.get(directive_id=directive.id)
    assert (trace.genome_id, trace.related_suggestion_ids) == (candidate, [TRIAL])
    assert tags.items() <= trace.metadata.items()
    result = Envelope.objects.get(target_node_id=ROOT, payload_type="vsm.task_result")
    assert tags.items() <= result.payload["metadata"].items()
    assert result.genome_id == candidate
    assert status(directive) == "completed"
    assert RULE in Task.objects.get(directive=directive).result_summary
    row = live()
    assert (row.routed_tasks, row.consumed_tokens) == (1, trace.input_tokens + trace.output_tokens)
    assert row.consumed_tokens > 0
    assert ledger_verify()[1] is None


def test_an_operator_approved_canary_needs_no_per_task_approval() -> None:
    candidate = trial(PROMPT_PATCH, mode="canary", share=10_000, requires_approval=True)
    submit("Before the approval")
    LiveTrial.objects.filter(trial_id=TRIAL).update(approved=True)
    submit("After the approval")
    champion = champion_version_id()
    assert genomes_to(CODER) == [champion, candidate]


@pytest.mark.parametrize(("share", "on_candidate"), [(0, 0), (10_000, 3)])
def test_a_canary_share_of_zero_never_and_ten_thousand_always_routes_to_the_candidate(
    share: int, on_candidate: int
) -> None:
    candidate = trial(PROMPT_PATCH, mode="canary", share=share)
    for n in range(3):
        submit(f"Task {n}")

    assert genomes_to(CODER).count(candidate) == on_candidate
    assert len(genomes_to(CODER)) == 3
    assert live().routed_tasks == on_candidate


def test_a_high_risk_task_needs_approval_even_at_the_full_share() -> None:
    candidate = trial(PROMPT_PATCH, mode="canary", share=10_000)
    submit("Risky", risk="High")
    submit("Risky and approved", risk="High", trial_approved=TRIAL)

    assert genomes_to(CODER) == [champion_version_id(), candidate]


def test_a_direct_trial_takes_every_task_until_max_tasks() -> None:
    candidate = trial(PROMPT_PATCH, mode="direct", max_tasks=2)
    for n in range(3):
        submit(f"Task {n}")

    assert genomes_to(CODER) == [candidate, candidate, champion_version_id()]
    assert live().routed_tasks == 2


def test_only_allowed_task_classes_reach_the_candidate() -> None:
    candidate = trial(PROMPT_PATCH, mode="direct", allowed_task_classes=["docs"])
    submit("Docs", task_class="docs")
    submit("Feature", task_class="feature")
    submit("Unclassified")

    assert genomes_to(CODER) == [candidate, champion_version_id(), champion_version_id()]


def test_too_many_estimated_files_or_a_spent_budget_keep_the_task_on_the_champion() -> None:
    candidate = trial(PROMPT_PATCH, mode="direct", max_files_touched=2, max_token_budget=10)
    submit("Small", estimated_files_touched="2")  # within both limits: spends > 10 tokens
    submit("Small again", estimated_files_touched="1")  # the budget is spent
    LiveTrial.objects.filter(trial_id=TRIAL).update(consumed_tokens=0)
    submit("Large", estimated_files_touched="3")

    assert genomes_to(CODER) == [candidate, champion_version_id(), champion_version_id()]


def test_an_approved_task_without_a_candidate_route_falls_back_with_an_event() -> None:
    trial(PROMPT_PATCH, mode="probation", max_tasks=0)
    directive = submit(trial_approved="true")

    assert genomes_to(CODER) == [champion_version_id()]
    [fallback] = events_of(kinds.TRIAL_ROUTE_FALLBACK)
    assert fallback.trial_id == TRIAL
    assert fallback.payload["reason"] == (
        "candidate route unavailable; falling back to champion routing: "
        "max tasks reached (0 of 0 routed)"
    )
    assert status(directive) == "completed"


def test_a_router_error_on_the_candidate_falls_back_to_the_champion_route() -> None:
    # In the candidate the only coder is retired: nothing there can write code.
    retire = {
        "kind": "batch",
        "patches": [
            REVIEWER_PATCH,
            {"kind": "set_node_status", "node_id": CODER, "status": "Retired"},
        ],
    }
    trial(retire, mode="direct")
    directive = submit()

    assert genomes_to(CODER) == [champion_version_id()]
    [fallback] = events_of(kinds.TRIAL_ROUTE_FALLBACK)
    assert fallback.payload["trial_route_role"] == "control"
    assert fallback.payload["reason"].startswith("the candidate's router failed: no child of")
    assert events_of(kinds.TASK_ROUTING_FAILED) == []
    assert status(directive) == "completed"
    assert live().routed_tasks == 0


def test_follow_up_tasks_of_a_candidate_result_route_on_the_base() -> None:
    candidate = trial(PROMPT_PATCH, mode="direct", max_tasks=1)
    directive = directive_submit(
        title="Add caching", metadata={**CODE, "decompose": "true", "requires_tests": "true"}
    ).directive
    drain_in_process()

    routed = {e.payload["title"]: e for e in tasks_to(CODER)}
    implementation, test = routed["Implement: Add caching"], routed["Test: Add caching"]
    assert implementation.genome_id == candidate
    # The test task became ready in a hop under the candidate (the implementation's
    # result); the trial is full, so it runs on the champion, untagged.
    assert test.genome_id == champion_version_id()
    assert "trial_id" not in test.payload["metadata"]
    assert status(directive) == "completed"


def test_a_task_held_on_the_candidate_route_is_decided_again_when_released() -> None:
    trial(PROMPT_PATCH, mode="direct")
    pause = signal_raise(
        signal=AlgedonicSignal(
            target_node_id=CODER, severity=8, override_policy=OverridePolicy(pause_subtree=True)
        ),
        raised_by="user:operator",
    )
    drain_in_process()
    directive = submit()
    assert Task.objects.get(directive=directive).status == "blocked_paused"
    assert live().routed_tasks == 0  # a held task is not routed to the candidate

    live_trial_close(trial_id=TRIAL)  # the trial ends while the task waits
    signal_raise(
        signal=AlgedonicSignal(
            target_node_id=CODER,
            valence=Valence.PLEASURE,
            message=f"resume after {pause.id}",
            override_policy=OverridePolicy(resume_subtree=True),
        ),
        raised_by="user:operator",
    )
    drain_in_process()

    [envelope] = tasks_to(CODER)
    assert envelope.genome_id == champion_version_id()
    assert "trial_id" not in envelope.payload["metadata"]
    assert status(directive) == "completed"


# -- the candidate's own nodes ---------------------------------------------------------


def deliver_all() -> None:
    """Deliver every pending envelope through ``vsm.deliver``'s entry point."""
    while (
        pending := Envelope.objects.filter(handled_at__isnull=True).order_by("created_at").first()
    ):
        envelope_deliver(envelope_id=pending.id, worker="test")


def test_a_leaf_only_the_candidate_has_executes_without_registering_anything(
    settings: Any,
) -> None:
    settings.VSM_LEAF_QUEUES = "per-node"
    candidate = trial(REVIEWER_PATCH, mode="direct")
    review = {"requires_code_write": "false", "required_capability": "review"}
    directive = directive_submit(title="Review it", metadata=review).directive
    deliver_all()

    [envelope] = tasks_to(REVIEWER)
    assert (envelope.genome_id, envelope.queue) == (candidate, f"leaf.{REVIEWER}")
    trace = TaskTrace.objects.get(directive_id=directive.id)
    assert (trace.assigned_node_id, trace.genome_id) == (REVIEWER, candidate)
    assert status(directive) == "completed"

    # Without the trial the champion has nobody who reviews.
    live_trial_close(trial_id=TRIAL)
    unreviewed = directive_submit(title="Review it again", metadata=review).directive
    deliver_all()
    assert status(unreviewed) == "failed"


def test_a_failing_candidate_only_leaf_raises_its_pain_signal_under_the_candidate() -> None:
    failing = leaf("scripted-coder", metadata={"provider.scripted.outcome": "fail"})
    replace = {
        "kind": "batch",
        "patches": [
            {"kind": "remove_subtree", "node_id": CODER},
            {"kind": "add_child", "parent_id": ROOT, "child": failing},
        ],
    }
    candidate = trial(replace, mode="direct")
    for n in range(3):
        submit(f"Task {n}")

    assert [t.status for t in Task.objects.all()] == ["failed"] * 3
    record = AlgedonicSignalRecord.objects.get(target_node_id="scripted-coder")
    assert "failed 3 tasks in a row" in record.message
    raised = LedgerEvent.objects.get(kind=kinds.ALGEDONIC_SIGNAL_RAISED)
    assert raised.genome_id == candidate


# -- shadow routes ---------------------------------------------------------------------

FAILING_SHADOW = {
    "kind": "batch",
    "patches": [
        {"kind": "remove_subtree", "node_id": CODER},
        {
            "kind": "add_child",
            "parent_id": ROOT,
            "child": leaf("scripted-coder", metadata={"provider.scripted.outcome": "fail"}),
        },
    ],
}


def test_a_shadow_trial_never_controls_and_its_copy_goes_to_the_candidate_child() -> None:
    candidate = trial(FAILING_SHADOW, mode="shadow", share=10_000)
    directive = directive_submit(title="Shadow me", metadata=CODE).directive
    envelope_deliver(envelope_id=Envelope.objects.get().id, worker="test")  # the root routes

    [champion] = tasks_to(CODER)
    [shadow] = tasks_to("scripted-coder")
    assert champion.created_at <= shadow.created_at  # the champion's route goes out first
    assert champion.genome_id == champion_version_id()
    assert "trial_id" not in champion.payload["metadata"]
    assert "resource_grant_id" in champion.metadata
    assert shadow.genome_id == candidate
    assert shadow.payload["id"] == champion.payload["id"]
    assert shadow.payload["metadata"]["trial_shadow"] == "true"
    assert shadow.payload["metadata"]["trial_route_role"] == "shadow"
    assert "resource_grant_id" not in shadow.metadata  # no grant for a copy
    [routed] = events_of(kinds.TRIAL_TASK_ROUTED)
    assert routed.payload["is_shadow_route"] is True

    # The shadow's (failing) result reaches the root first: recorded, settles nothing.
    envelope_deliver(envelope_id=shadow.id, worker="test")
    shadow_result = Envelope.objects.get(target_node_id=ROOT, payload_type="vsm.task_result")
    envelope_deliver(envelope_id=shadow_result.id, worker="test")
    [recorded] = events_of(kinds.TRIAL_SHADOW_RESULT_RECORDED)
    assert (recorded.trial_id, recorded.payload["status"]) == (TRIAL, "Failed")
    assert Task.objects.get(directive=directive).status == "routed"
    assert status(directive) == "running"

    drain_in_process()
    task = Task.objects.get(directive=directive)
    assert (task.status, task.executed_by) == ("completed", CODER)
    assert status(directive) == "completed"
    assert live().routed_tasks == 1
    traces = TaskTrace.objects.filter(task_id=task.id)
    assert {t.genome_id for t in traces} == {champion_version_id(), candidate}


def test_a_shadow_result_is_not_forwarded_past_its_trials_controller() -> None:
    failing = leaf("scripted-coder", metadata={"provider.scripted.outcome": "fail"})
    patch = {"kind": "add_child", "parent_id": SYSTEM, "child": failing}
    nested_patch = {
        "kind": "batch",
        "patches": [{"kind": "remove_subtree", "node_id": BACKEND_CODER}, patch],
    }
    trial(nested_patch, mode="shadow", template="nested", controller=SYSTEM, share=10_000)
    directive = submit()

    to_root = Envelope.objects.filter(target_node_id=ROOT, payload_type="vsm.task_result")
    assert [e.payload["produced_by"] for e in to_root] == [BACKEND_CODER]
    [recorded] = events_of(kinds.TRIAL_SHADOW_RESULT_RECORDED)
    assert recorded.node_id == SYSTEM
    assert status(directive) == "completed"


def test_a_shadow_trial_sends_no_copy_of_a_task_outside_its_share() -> None:
    trial(FAILING_SHADOW, mode="shadow", share=0)
    directive = submit()
    assert tasks_to("scripted-coder") == []
    assert status(directive) == "completed"


# -- what the trials app is told -------------------------------------------------------


def test_every_result_at_the_trial_controller_is_evidence(listening: Any) -> None:
    from workers import signals

    evidence = listening(signals.trial_evidence_arrived)
    trial(PROMPT_PATCH, mode="probation")
    submit("Champion's")
    submit("Candidate's", trial_approved="true")

    assert [call["trial_id"] for call in evidence.calls] == [TRIAL, TRIAL]
    assert [call["controller_node_id"] for call in evidence.calls] == [ROOT, ROOT]
    assert [call["trial_route_role"] for call in evidence.calls] == ["", "control"]
    traces = {t.metadata["task_title"]: t.id for t in TaskTrace.objects.all()}
    assert [call["trace_id"] for call in evidence.calls] == [
        traces["Champion's"],
        traces["Candidate's"],
    ]


def test_a_freeze_is_asked_of_the_trials_app_once_on_the_way_up(listening: Any) -> None:
    from ledger.services import EventDraft
    from workers import signals

    genome_bootstrap(template="nested", actor="operator:test")
    freeze = listening(signals.mutation_freeze_requested, reply=[f"active_trial_frozen={TRIAL}"])
    signal_raise(
        signal=AlgedonicSignal(
            target_node_id=BACKEND_CODER,
            severity=9,
            message="tests fail everywhere",
            override_policy=OverridePolicy(freeze_mutation=True, escalate_to_root=True),
        ),
        raised_by="user:operator",
    )
    drain_in_process()

    [call] = freeze.calls
    context = call.pop("event_context")
    assert call == {
        "sender": SYSTEM,
        "controller_node_id": SYSTEM,
        "suggestion_id": None,
        "message": "tests fail everywhere",
    }
    assert isinstance(context, EventDraft)
    assert (context.node_id, context.genome_id) == (SYSTEM, champion_version_id())
    applied = {e.node_id: e.payload["actions"] for e in events_of(kinds.ALGEDONIC_OVERRIDE_APPLIED)}
    assert applied == {
        SYSTEM: [f"active_trial_frozen={TRIAL}", "escalated_to_parent"],
        ROOT: ["freeze_mutation_applied_below", "escalation_at_root"],
    }


def test_a_freeze_naming_a_suggestion_is_asked_at_every_hop(listening: Any) -> None:
    from workers import signals

    genome_bootstrap(template="nested", actor="operator:test")
    freeze = listening(signals.mutation_freeze_requested, reply=[])
    signal_raise(
        signal=AlgedonicSignal(
            target_node_id=BACKEND_CODER,
            related_suggestion_id=TRIAL,
            override_policy=OverridePolicy(freeze_mutation=True, escalate_to_root=True),
        ),
        raised_by="user:operator",
    )
    drain_in_process()

    assert [(c["controller_node_id"], c["suggestion_id"]) for c in freeze.calls] == [
        (SYSTEM, TRIAL),
        (ROOT, TRIAL),
    ]
    # Nobody froze anything: the freeze is recorded, as without a trials app.
    actions = [e.payload["actions"][0] for e in events_of(kinds.ALGEDONIC_OVERRIDE_APPLIED)]
    assert actions == ["freeze_mutation_recorded", "freeze_mutation_recorded"]


def test_a_homeostat_suggestion_is_handed_to_the_trials_app(listening: Any) -> None:
    from ledger.services import ledger_batch
    from organization.genome import VsmChannelType
    from organization.selectors import champion_genome
    from workers import signals
    from workers.domain.homeostat import GeneSuggestionDraft
    from workers.domain.messages import MessageEnvelope
    from workers.services.transport import envelope_publish

    genome_bootstrap(template="nested", actor="operator:test")
    suggested = listening(signals.gene_suggested)
    patch = {"kind": "set_node_status", "node_id": BACKEND_CODER, "status": "Probation"}
    message = MessageEnvelope(
        channel_type=VsmChannelType.THREE_FOUR_HOMEOSTAT,
        target_node_id=SYSTEM,
        payload_type="vsm.three_four_homeostat_signal",
        payload={
            "system_3_node_id": SYSTEM,
            "system_4_node_id": SYSTEM,
            "target_node_id": BACKEND_CODER,
            "kind": "ResourceImbalance",
            "balance": "Conflict",
            "severity": 8,
            "suggested_patches": [patch],
        },
    )
    genome = champion_genome()
    assert genome is not None
    with ledger_batch():
        envelope_publish(envelope=message, genome=genome)
    drain_in_process()

    [call] = suggested.calls
    assert (call["sender"], call["controller_node_id"]) == (SYSTEM, SYSTEM)
    assert isinstance(call["draft"], GeneSuggestionDraft)
    assert call["draft"].patch == patch
    assert call["event_context"].causation_id == message.id
    assert len(events_of(kinds.GENE_SUGGESTION_CREATED)) == 1


def test_without_a_live_trial_nothing_is_tagged_and_nobody_is_told(listening: Any) -> None:
    from workers import signals

    evidence = listening(signals.trial_evidence_arrived)
    genome_bootstrap(template="single", actor="operator:test")
    directive = submit(trial_approved="true")

    assert "trial_id" not in tasks_to(CODER)[0].payload["metadata"]
    assert TaskTrace.objects.get().related_suggestion_ids == []
    assert evidence.calls == []
    assert events_of(kinds.TRIAL_ROUTE_FALLBACK) == []
    assert status(directive) == "completed"


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.force_authenticate(factories.admin())
    return client


def test_the_api_shows_the_candidate_leaf_that_ran_a_trial_task(api: APIClient) -> None:
    trial(REVIEWER_PATCH, mode="direct")
    review = {"requires_code_write": "false", "required_capability": "review"}
    directive = directive_submit(title="Review", metadata=review).directive
    drain_in_process()

    shown = api.get(f"/api/directives/{directive.id}/").json()
    assert shown["status"] == "completed"
    [task] = shown["tasks"]
    assert (task["assigned_node_id"], task["executed_by"]) == (REVIEWER, REVIEWER)


# -- nested controllers ----------------------------------------------------------------

NESTED_PROMPT_PATCH = {**PROMPT_PATCH, "node_id": BACKEND_CODER}


def test_a_nested_controller_routes_a_trial_task_on_under_the_candidate() -> None:
    candidate = trial(NESTED_PROMPT_PATCH, mode="direct", template="nested")
    directive = submit()

    assert genomes_to(SYSTEM) == [candidate]
    assert genomes_to(BACKEND_CODER) == [candidate]
    [to_leaf] = tasks_to(BACKEND_CODER)
    assert to_leaf.payload["metadata"]["trial_controller_node_id"] == ROOT
    assert "resource_grant_id" in to_leaf.metadata  # granted by backend-system, as usual
    assert TaskTrace.objects.get().genome_id == candidate
    assert RULE in Task.objects.get(directive=directive).result_summary
    assert status(directive) == "completed"
    assert live().routed_tasks == 1  # counted once, by the trial's controller


def test_a_shadow_copy_passes_a_nested_controller_ungranted_and_stops_at_its_trials() -> None:
    candidate = trial(NESTED_PROMPT_PATCH, mode="shadow", template="nested", share=10_000)
    directive = submit()

    champion, shadow = tasks_to(BACKEND_CODER)
    assert (champion.genome_id, shadow.genome_id) == (champion_version_id(), candidate)
    assert "resource_grant_id" in champion.metadata
    assert "resource_grant_id" not in shadow.metadata
    # backend-system forwards the shadow's result up like any other; the root stops it.
    to_root = Envelope.objects.filter(target_node_id=ROOT, payload_type="vsm.task_result")
    assert sorted(e.payload["metadata"].get("trial_shadow", "") for e in to_root) == ["", "true"]
    [recorded] = events_of(kinds.TRIAL_SHADOW_RESULT_RECORDED)
    assert recorded.node_id == ROOT
    task = Task.objects.get(directive=directive)
    assert RULE not in task.result_summary
    assert status(directive) == "completed"


def test_a_shadow_copy_handed_back_by_a_paused_leaf_is_sent_again_alone() -> None:
    trial(FAILING_SHADOW, mode="shadow", share=10_000)
    directive = directive_submit(title="Shadow me", metadata=CODE).directive
    envelope_deliver(envelope_id=Envelope.objects.get().id, worker="test")  # the root routes
    [shadow] = tasks_to("scripted-coder")
    # The candidate's own leaf is paused before it starts the copy.
    signal_raise(
        signal=AlgedonicSignal(
            target_node_id="scripted-coder",
            severity=8,
            override_policy=OverridePolicy(pause_subtree=True),
        ),
        raised_by="user:operator",
    )
    pause = Envelope.objects.get(payload_type="vsm.algedonic_signal")
    envelope_deliver(envelope_id=pause.id, worker="test")
    assert envelope_deliver(envelope_id=shadow.id, worker="test") == "held"
    assert Task.objects.get(directive=directive).status == "routed"  # the copy is not the task

    drain_in_process()
    assert status(directive) == "completed"
    signal_raise(
        signal=AlgedonicSignal(
            target_node_id="scripted-coder",
            valence=Valence.PLEASURE,
            override_policy=OverridePolicy(resume_subtree=True),
        ),
        raised_by="user:operator",
    )
    drain_in_process()

    assert len(tasks_to(CODER)) == 1  # the champion's arm did not run again
    first, again = tasks_to("scripted-coder")
    assert again.payload["id"] == first.payload["id"]
    assert again.payload["metadata"]["trial_shadow"] == "true"
    assert len(events_of(kinds.TRIAL_SHADOW_RESULT_RECORDED)) == 1
    assert live().routed_tasks == 1
    assert Task.objects.get(directive=directive).status == "completed"


def test_a_directive_routed_under_another_genome_than_the_trials_base_stays_off_it() -> None:
    from organization.services import genome_apply_patch

    trial(PROMPT_PATCH, mode="direct")
    # An operator's patch moves the champion on: the trial's base is superseded.
    genome_apply_patch(
        patch={"kind": "add_tool", "node_id": CODER, "tool": {"name": "grep"}},
        actor="operator:test",
    )
    submit()
    assert genomes_to(CODER) == [champion_version_id()]
    assert live().routed_tasks == 0

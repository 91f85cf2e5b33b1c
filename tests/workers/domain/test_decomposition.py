"""System 3 splits by capability and revises a failed child once (docs/rules/decomposition.md)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from organization.genome import (
    LeafKind,
    LeafOperationSpec,
    NodeLifecycleStatus,
    NodeNotFound,
    OrganizationalGenome,
    ViableNode,
    VsmChannelType,
    add_child,
)
from workers.domain.decomposition import (
    DecompositionPlan,
    DecompositionRole,
    EnvironmentPressure,
    decomposition_requested,
    plan_decomposition,
    plan_revision,
)
from workers.domain.mapping import map_directive
from workers.domain.messages import (
    AcceptanceCriterion,
    DirectiveMessage,
    RiskClass,
    TaskPacket,
    TaskResult,
    TaskStatus,
)

ROOT = "root"
S2 = VsmChannelType.SYSTEM2_COORDINATION
IMPLEMENTATION = DecompositionRole.IMPLEMENTATION
TEST = DecompositionRole.TEST
REVIEW = DecompositionRole.REVIEW
INTEGRATION = DecompositionRole.INTEGRATION


def make_coder(name: str = "coder") -> ViableNode:
    return ViableNode.leaf(name, LeafOperationSpec.coding(), id=name)


def make_tester(name: str = "tester") -> ViableNode:
    return ViableNode.leaf(name, LeafOperationSpec.tester(), id=name)


def make_reviewer(name: str = "reviewer") -> ViableNode:
    return ViableNode.leaf(name, LeafOperationSpec.reviewer(), id=name)


def make_integrator(name: str = "integrator") -> ViableNode:
    spec = LeafOperationSpec(kind=LeafKind.INTEGRATION, allows_integration=True)
    return ViableNode.leaf(name, spec, id=name)


def make_writer(name: str = "writer") -> ViableNode:
    """A documentation leaf that may do nothing a decomposed task needs."""
    return ViableNode.leaf(name, LeafOperationSpec(kind=LeafKind.DOCUMENTATION), id=name)


def retired(node: ViableNode) -> ViableNode:
    node.status = NodeLifecycleStatus.RETIRED
    return node


def genome_of(*children: ViableNode) -> OrganizationalGenome:
    genome = OrganizationalGenome.from_root(ViableNode.metasystem(ROOT, id=ROOT))
    for child in children:
        add_child(genome, ROOT, child)
    return genome


def full_team() -> OrganizationalGenome:
    return genome_of(make_coder(), make_tester(), make_reviewer(), make_integrator())


def directive_for(risk: RiskClass = RiskClass.MEDIUM, **metadata: str) -> DirectiveMessage:
    return DirectiveMessage(
        id="d-1",
        title="Add export",
        body="Export the ledger as CSV via src/export.py.",
        constraints=["keep the API stable"],
        desired_state="CSV export exists",
        risk=risk,
        metadata={"decompose": "true", **metadata},
        acceptance=[AcceptanceCriterion(name="csv", verifier="make test")],
    )


def plan_for(
    directive: DirectiveMessage,
    genome: OrganizationalGenome | None = None,
    *,
    pressure: EnvironmentPressure | None = None,
    default_requires_code_write: bool = True,
) -> DecompositionPlan:
    root = map_directive(directive, controller_node_id=ROOT)
    return plan_decomposition(
        root,
        genome=full_team() if genome is None else genome,
        controller_node_id=ROOT,
        pressure=pressure or EnvironmentPressure(),
        default_requires_code_write=default_requires_code_write,
        directive_metadata=directive.metadata,
    )


def roles(plan: DecompositionPlan) -> list[DecompositionRole]:
    return [child.role for child in plan.children]


def child(plan: DecompositionPlan, role: DecompositionRole) -> TaskPacket:
    (task,) = [planned.task for planned in plan.children if planned.role is role]
    return task


# -- when decomposition is requested --------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "requested"),
    [
        ({"decompose": "true"}, True),
        ({"decompose": "YES"}, True),
        ({"decompose": "1"}, True),
        ({"task.metadata.decompose": "yes"}, True),
        ({"decomposition_policy": "system3_capability_split"}, True),
        ({"task.metadata.decomposition_policy": "system3_capability_split"}, True),
        ({"decompose": "false", "decomposition_policy": "system3_capability_split"}, True),
        ({}, False),
        ({"decompose": "false"}, False),
        ({"decompose": "on"}, False),
        ({"decompose": "false", "task.metadata.decompose": "true"}, False),  # plain key wins
        ({"decomposition_policy": "system3_capability_split_v1"}, False),
    ],
)
def test_it_tells_when_decomposition_is_requested(metadata, requested) -> None:
    assert decomposition_requested(metadata) is requested
    assert decomposition_requested(DirectiveMessage(title="t", metadata=metadata)) is requested
    assert decomposition_requested(TaskPacket(title="t", metadata=metadata)) is requested


def test_it_plans_a_single_task_when_decomposition_was_not_requested() -> None:
    directive = directive_for()
    del directive.metadata["decompose"]

    plan = plan_for(directive)

    assert not plan.decomposed and plan.children == []
    assert "decomposition_policy" not in plan.root.metadata


def test_it_plans_a_single_task_when_the_controller_may_not_decompose() -> None:
    genome = full_team()
    genome.node(ROOT).system_3.can_decompose_tasks = False

    plan = plan_for(directive_for(requires_tests="true"), genome)

    assert not plan.decomposed
    assert "decomposition_policy" not in plan.root.metadata
    assert "decomposition_task_count" not in plan.root.metadata


def test_it_rejects_an_unknown_controller() -> None:
    root = map_directive(directive_for())

    with pytest.raises(NodeNotFound):
        plan_decomposition(root, genome=full_team(), controller_node_id="nobody")


def test_it_reads_the_request_from_the_root_task_without_directive_metadata() -> None:
    directive = DirectiveMessage(
        title="Add export",
        metadata={"task.metadata.decompose": "true", "task.metadata.requires_tests": "true"},
    )
    root = map_directive(directive)

    plan = plan_decomposition(root, genome=full_team(), controller_node_id=ROOT)

    assert roles(plan) == [IMPLEMENTATION, TEST]


def test_it_never_changes_the_task_it_was_given() -> None:
    root = map_directive(directive_for(), controller_node_id=ROOT)
    before = copy.deepcopy(root)

    plan_decomposition(root, genome=full_team(), controller_node_id=ROOT)

    assert root == before


# -- the root task ------------------------------------------------------------------


def test_it_annotates_the_root_task() -> None:
    plan = plan_for(directive_for(requires_tests="true"))

    assert plan.root.metadata["decomposition_policy"] == "system3_capability_split_v1"
    assert plan.root.metadata["decomposition_authority"] == "system3"
    assert plan.root.metadata["decomposition_root"] == "true"
    assert plan.root.metadata["decomposition_task_count"] == "2"
    assert plan.root_task_mapped_policy == "system3_capability_split_root"
    assert "decomposition_pressure_policy" not in plan.root.metadata
    assert list(plan.root.metadata) == sorted(plan.root.metadata)


def test_it_records_environment_pressure_on_the_root_task() -> None:
    pressure = EnvironmentPressure(
        event_count=3, homeostat_count=1, risk=12, opportunity=0.35, feedback=1 / 3, max_severity=8
    )

    plan = plan_for(directive_for(), pressure=pressure)

    metadata = plan.root.metadata
    assert metadata["decomposition_pressure_policy"] == "environment_three_four_pressure_v1"
    assert metadata["environment_signal_count"] == "3"
    assert metadata["three_four_homeostat_count"] == "1"
    assert metadata["environment_risk_pressure"] == "12.000"
    assert metadata["environment_opportunity_pressure"] == "0.350"
    assert metadata["environment_feedback_pressure"] == "0.333"
    assert metadata["environment_max_severity"] == "8"


# -- the implementation task ------------------------------------------------------------


def test_the_implementation_task_always_exists_and_goes_to_a_coder() -> None:
    plan = plan_for(directive_for(target_child="someone-else"))

    assert roles(plan) == [IMPLEMENTATION]
    (planned,) = plan.children
    task = planned.task
    assert planned.channel is VsmChannelType.RESOURCE_BARGAINING
    assert planned.task_mapped_policy == "system3_capability_split_implementation"
    assert task.title == "Implement: Add export"
    assert task.goal == "Export the ledger as CSV via src/export.py."
    assert task.parent_task_id == plan.root.id
    assert task.dependencies == []
    assert task.metadata["required_capability"] == "write_code"
    assert task.metadata["requires_code_write"] == "true"
    assert task.metadata["target_child"] == "coder"
    assert task.metadata["decomposition_policy"] == "system3_capability_split_v1"
    assert task.metadata["decomposition_authority"] == "system3"
    assert task.metadata["decomposition_parent_task_id"] == plan.root.id
    assert task.metadata["decomposition_role"] == "implementation"
    assert plan.root.metadata["decomposition_task_count"] == "1"


def test_children_inherit_the_root_brief() -> None:
    plan = plan_for(directive_for(requires_tests="true", task_class="feature"))

    for planned in plan.children:
        task = planned.task
        assert task.id != plan.root.id
        assert task.directive_id == "d-1"
        assert task.target_state == "CSV export exists"
        assert task.scope == ["src/export.py"]
        assert task.constraints == ["keep the API stable"]
        assert task.risk is RiskClass.MEDIUM
        assert task.static_predicates == plan.root.static_predicates
        assert task.static_predicates is not plan.root.static_predicates
        assert task.acceptance == plan.root.acceptance
        assert task.metadata["task_class"] == "feature"
        assert task.metadata["controller_node_id"] == ROOT
        assert "decomposition_root" not in task.metadata
        assert "decomposition_task_count" not in task.metadata
        assert list(task.metadata) == sorted(task.metadata)


def test_the_implementation_follows_the_mapper_default_for_code_writing() -> None:
    plan = plan_for(directive_for(), default_requires_code_write=False)

    assert child(plan, IMPLEMENTATION).metadata["requires_code_write"] == "false"


def test_an_implementation_without_a_capable_child_has_no_target() -> None:
    plan = plan_for(directive_for(target_child="writer"), genome_of(make_writer()))

    assert roles(plan) == [IMPLEMENTATION]
    assert "target_child" not in child(plan, IMPLEMENTATION).metadata


def test_children_carry_the_pressure_annotation_of_the_root() -> None:
    plan = plan_for(directive_for(), pressure=EnvironmentPressure(event_count=1, feedback=2))

    assert child(plan, IMPLEMENTATION).metadata["environment_feedback_pressure"] == "2.000"


# -- the test task ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        {"requires_tests": "true"},
        {"requires_tests": "Yes"},
        {"task.metadata.requires_tests": "1"},
        {"test_targets": ""},
        {"task.metadata.test_targets": "pytest"},
    ],
)
def test_a_test_task_is_planned_when_tests_are_asked_for(metadata) -> None:
    plan = plan_for(directive_for(**metadata))

    assert roles(plan) == [IMPLEMENTATION, TEST]
    planned = plan.children[1]
    task = planned.task
    assert planned.channel is S2
    assert planned.task_mapped_policy == "system3_capability_split_test"
    assert task.title == "Test: Add export"
    assert task.goal == f"Verify the implementation for directive task {plan.root.id}"
    assert task.dependencies == [child(plan, IMPLEMENTATION).id]
    assert task.metadata["required_capability"] == "run_tests"
    assert task.metadata["requires_code_write"] == "false"
    assert task.metadata["target_child"] == "tester"
    assert task.metadata["decomposition_role"] == "test"


@pytest.mark.parametrize(
    "metadata",
    [{}, {"requires_tests": "false"}, {"static_predicates.test_targets": "pytest"}],
)
def test_no_test_task_is_planned_otherwise(metadata) -> None:
    assert roles(plan_for(directive_for(**metadata))) == [IMPLEMENTATION]


def test_without_a_tester_the_coder_takes_the_test_task() -> None:
    plan = plan_for(
        directive_for(requires_tests="true"), genome_of(make_coder(), make_reviewer("r"))
    )

    # The reviewer preset may run tests too, but the coder comes first among capable children.
    assert child(plan, TEST).metadata["target_child"] == "coder"


def test_no_test_task_is_planned_when_no_child_can_run_tests() -> None:
    plan = plan_for(directive_for(requires_tests="true"), genome_of(make_writer()))

    assert roles(plan) == [IMPLEMENTATION]


# -- the review task ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("risk", "metadata", "pressure"),
    [
        (RiskClass.MEDIUM, {"requires_review": "true"}, None),
        (RiskClass.MEDIUM, {"task.metadata.requires_review": "yes"}, None),
        (RiskClass.HIGH, {}, None),
        (RiskClass.CRITICAL, {}, None),
        (RiskClass.MEDIUM, {}, EnvironmentPressure(event_count=1, homeostat_count=1, risk=6)),
        (
            RiskClass.MEDIUM,
            {},
            EnvironmentPressure(event_count=1, homeostat_count=1, max_severity=7),
        ),
    ],
)
def test_a_review_task_is_planned_for_risky_or_pressured_work(risk, metadata, pressure) -> None:
    plan = plan_for(directive_for(risk, **metadata), pressure=pressure)

    assert roles(plan) == [IMPLEMENTATION, REVIEW]
    planned = plan.children[1]
    task = planned.task
    assert planned.channel is S2
    assert planned.task_mapped_policy == "system3_capability_split_review"
    assert task.title == "Review: Add export"
    assert task.goal == f"Review the implementation for directive task {plan.root.id}"
    assert task.dependencies == [child(plan, IMPLEMENTATION).id]
    assert task.metadata["required_capability"] == "review"
    assert task.metadata["requires_code_write"] == "false"
    assert task.metadata["target_child"] == "reviewer"
    assert task.risk is risk


@pytest.mark.parametrize(
    ("risk", "metadata", "pressure"),
    [
        (RiskClass.LOW, {}, None),
        (RiskClass.MEDIUM, {"requires_review": "false"}, None),
        # Without a homeostat signal, environment risk alone does not ask for review.
        (RiskClass.MEDIUM, {}, EnvironmentPressure(event_count=3, risk=12, max_severity=10)),
        (
            RiskClass.MEDIUM,
            {},
            EnvironmentPressure(event_count=1, homeostat_count=1, risk=5.9, max_severity=6),
        ),
    ],
)
def test_no_review_task_is_planned_for_calm_work(risk, metadata, pressure) -> None:
    assert roles(plan_for(directive_for(risk, **metadata), pressure=pressure)) == [IMPLEMENTATION]


def test_no_review_task_is_planned_when_no_child_can_review() -> None:
    plan = plan_for(directive_for(RiskClass.HIGH), genome_of(make_coder(), make_tester()))

    assert roles(plan) == [IMPLEMENTATION]


# -- the integration task -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "pressure"),
    [
        ({"requires_integration": "true"}, None),
        ({"task.metadata.requires_integration": "1"}, None),
        ({}, EnvironmentPressure(event_count=2, homeostat_count=1, risk=6, opportunity=6)),
    ],
)
def test_an_integration_task_is_planned_on_request_or_balanced_pressure(metadata, pressure) -> None:
    plan = plan_for(directive_for(**metadata), pressure=pressure)

    planned = plan.children[-1]
    task = planned.task
    assert planned.role is INTEGRATION
    assert planned.channel is S2
    assert planned.task_mapped_policy == "system3_capability_split_integration"
    assert task.title == "Integrate: Add export"
    assert task.goal == f"Integrate dependent outputs for directive task {plan.root.id}"
    assert task.metadata["required_capability"] == "integrate"
    assert task.metadata["requires_code_write"] == "false"
    assert task.metadata["target_child"] == "integrator"


@pytest.mark.parametrize(
    "pressure",
    [
        EnvironmentPressure(event_count=2, homeostat_count=1, risk=6, opportunity=5.9),
        EnvironmentPressure(event_count=2, homeostat_count=0, risk=9, opportunity=9),
    ],
)
def test_no_integration_task_is_planned_for_one_sided_pressure(pressure) -> None:
    assert INTEGRATION not in roles(plan_for(directive_for(), pressure=pressure))


def test_integration_depends_on_every_task_planned_before_it() -> None:
    directive = directive_for(RiskClass.HIGH, requires_tests="true", requires_integration="true")

    plan = plan_for(directive)

    assert roles(plan) == [IMPLEMENTATION, TEST, REVIEW, INTEGRATION]
    assert child(plan, INTEGRATION).dependencies == [
        child(plan, role).id for role in (IMPLEMENTATION, TEST, REVIEW)
    ]
    assert plan.root.metadata["decomposition_task_count"] == "4"


def test_a_child_metasystem_can_take_the_integration_task() -> None:
    genome = genome_of(make_coder())
    add_child(genome, ROOT, ViableNode.metasystem("backend", id="backend"))
    add_child(genome, "backend", make_coder("backend-coder"))

    plan = plan_for(directive_for(requires_integration="true"), genome)

    assert child(plan, INTEGRATION).metadata["target_child"] == "backend"


def test_no_integration_task_is_planned_when_no_child_can_integrate() -> None:
    plan = plan_for(directive_for(requires_integration="true"), genome_of(make_coder()))

    assert roles(plan) == [IMPLEMENTATION]


# -- choosing the target child ----------------------------------------------------------------


def test_the_preferred_leaf_kind_wins_over_an_earlier_capable_child() -> None:
    plan = plan_for(directive_for(requires_tests="true"), genome_of(make_coder(), make_tester()))

    assert child(plan, TEST).metadata["target_child"] == "tester"


def test_retired_children_are_never_targets() -> None:
    genome = genome_of(
        retired(make_coder("old-coder")), retired(make_tester()), make_coder("new-coder")
    )

    plan = plan_for(directive_for(requires_tests="true"), genome)

    assert child(plan, IMPLEMENTATION).metadata["target_child"] == "new-coder"
    assert child(plan, TEST).metadata["target_child"] == "new-coder"


def test_the_target_is_the_child_name_not_its_id() -> None:
    node = ViableNode.leaf("Friendly Coder", LeafOperationSpec.coding(), id="c-17")

    plan = plan_for(directive_for(), genome_of(node))

    assert child(plan, IMPLEMENTATION).metadata["target_child"] == "Friendly Coder"


def test_a_leaf_of_the_preferred_kind_is_chosen_even_without_the_capability() -> None:
    # As in the reference: the kind says what the leaf is for; routing checks the capability.
    hollow_tester = ViableNode.leaf("hollow", LeafOperationSpec(kind=LeafKind.TESTING), id="h")

    plan = plan_for(directive_for(requires_tests="true"), genome_of(make_coder(), hollow_tester))

    assert child(plan, TEST).metadata["target_child"] == "hollow"


def test_a_custom_kind_never_counts_as_the_preferred_kind() -> None:
    custom = LeafOperationSpec(kind=LeafKind.custom("Testing"))
    genome = genome_of(ViableNode.leaf("custom", custom, id="custom"), make_coder())

    plan = plan_for(directive_for(requires_tests="true"), genome)

    assert child(plan, TEST).metadata["target_child"] == "coder"


# -- invariants for every request ----------------------------------------------------------------

pressures = st.builds(
    EnvironmentPressure,
    event_count=st.integers(0, 5),
    homeostat_count=st.integers(0, 2),
    risk=st.floats(0, 15),
    opportunity=st.floats(0, 15),
    feedback=st.floats(0, 5),
    max_severity=st.integers(0, 10),
)
request_flags = st.fixed_dictionaries(
    {},
    optional={
        "requires_tests": st.sampled_from(["true", "false", "yes"]),
        "test_targets": st.just("pytest"),
        "requires_review": st.sampled_from(["true", "0"]),
        "requires_integration": st.sampled_from(["true", "no"]),
    },
)
teams = st.lists(
    st.sampled_from([make_coder, make_tester, make_reviewer, make_integrator, make_writer]),
    min_size=1,
    max_size=4,
)


@given(
    risk=st.sampled_from(list(RiskClass)),
    flags=request_flags,
    pressure=pressures,
    team=teams,
)
def test_every_plan_starts_with_the_implementation_and_depends_only_backwards(
    risk, flags, pressure, team
) -> None:
    genome = genome_of(*(make(f"{make.__name__}-{i}") for i, make in enumerate(team)))

    plan = plan_for(directive_for(risk, **flags), genome, pressure=pressure)

    assert plan.children[0].role is IMPLEMENTATION
    assert plan.root.metadata["decomposition_task_count"] == str(len(plan.children))
    assert len(set(roles(plan))) == len(plan.children)
    seen: list[str] = []
    for planned in plan.children:
        assert planned.task.parent_task_id == plan.root.id
        assert set(planned.task.dependencies) <= set(seen)
        if planned.role is not IMPLEMENTATION:
            assert planned.task.metadata["target_child"] in {n.name for n in genome.nodes.values()}
        seen.append(planned.task.id)
    assert roles(plan) == sorted(roles(plan), key=list(DecompositionRole).index)


# -- revision after a failed child ---------------------------------------------------------


def failed_result(
    status: TaskStatus = TaskStatus.FAILED, *, error: str | None = "boom", **metadata: str
) -> TaskResult:
    return TaskResult(
        task_id="t-impl",
        produced_by="coder",
        status=status,
        summary="tests fail",
        error=error,
        metadata={
            "decomposition_role": "implementation",
            "parent_task_id": "t-root",
            "directive_id": "d-1",
            "required_capability": "write_code",
            "target_child": "coder",
            **metadata,
        },
    )


def test_a_failed_child_gets_one_revision_task() -> None:
    revision = plan_revision(failed_result())

    assert revision is not None
    assert revision.title == "Revise implementation after Failed"
    assert revision.goal == (
        "Revise decomposed task t-impl after Failed. Child summary: tests fail Error: boom"
    )
    assert revision.parent_task_id == "t-root"
    assert revision.directive_id == "d-1"
    assert revision.dependencies == ["t-impl"]
    assert revision.risk is RiskClass.MEDIUM
    assert revision.metadata == {
        "decomposition_authority": "system3",
        "decomposition_policy": "system3_result_revision_v1",
        "decomposition_result_error": "boom",
        "decomposition_result_produced_by": "coder",
        "decomposition_result_status": "Failed",
        "decomposition_revision_depth": "1",
        "decomposition_revision_of_task_id": "t-impl",
        "decomposition_role": "implementation",
        "required_capability": "write_code",
        "requires_code_write": "false",
        "target_child": "coder",
    }


@pytest.mark.parametrize(
    ("status", "risk"),
    [
        (TaskStatus.FAILED, RiskClass.MEDIUM),
        (TaskStatus.REJECTED, RiskClass.MEDIUM),
        (TaskStatus.NEEDS_HUMAN, RiskClass.HIGH),
    ],
)
def test_a_revision_is_riskier_when_the_child_needs_a_human(status, risk) -> None:
    revision = plan_revision(failed_result(status))

    assert revision is not None
    assert revision.risk is risk
    assert revision.title == f"Revise implementation after {status.value}"
    assert revision.metadata["decomposition_result_status"] == status.value


def test_a_revision_without_an_error_says_nothing_about_one() -> None:
    revision = plan_revision(failed_result(error=None))

    assert revision is not None
    assert revision.goal == "Revise decomposed task t-impl after Failed. Child summary: tests fail"
    assert "decomposition_result_error" not in revision.metadata


@pytest.mark.parametrize("status", [TaskStatus.COMPLETED, TaskStatus.NOOP])
def test_a_successful_child_needs_no_revision(status) -> None:
    assert plan_revision(failed_result(status)) is None


def test_a_task_that_was_not_decomposed_gets_no_revision() -> None:
    result = TaskResult(task_id="t", produced_by="coder", status=TaskStatus.FAILED)

    assert plan_revision(result) is None


@pytest.mark.parametrize(
    ("depth", "revised"), [("0", True), ("x", True), ("-1", True), ("1", False), ("7", False)]
)
def test_only_a_first_level_failure_is_revised(depth, revised) -> None:
    revision = plan_revision(failed_result(decomposition_revision_depth=depth))

    assert (revision is not None) is revised


def test_a_failed_revision_is_not_revised_again() -> None:
    revision = plan_revision(failed_result())
    assert revision is not None
    # The worker echoes the task's metadata on its result.
    second = TaskResult(
        task_id=revision.id,
        produced_by="coder",
        status=TaskStatus.FAILED,
        metadata=dict(revision.metadata),
    )

    assert plan_revision(second) is None
    assert plan_revision(second, failed_task=revision) is None


def test_the_failed_task_fills_in_what_the_result_lacks() -> None:
    plan = plan_for(directive_for(requires_tests="true"))
    failed_task = child(plan, TEST)
    result = TaskResult(
        task_id=failed_task.id, produced_by="tester", status=TaskStatus.REJECTED, summary="no"
    )

    revision = plan_revision(result, failed_task=failed_task)

    assert revision is not None
    assert revision.title == "Revise test after Rejected"
    assert revision.parent_task_id == plan.root.id
    assert revision.directive_id == "d-1"
    assert revision.dependencies == [failed_task.id]
    assert revision.metadata["required_capability"] == "run_tests"
    assert revision.metadata["target_child"] == "tester"
    assert revision.scope == failed_task.scope
    assert revision.constraints == failed_task.constraints
    assert revision.acceptance == failed_task.acceptance
    assert revision.static_predicates == failed_task.static_predicates


def test_the_result_metadata_wins_over_the_failed_task() -> None:
    failed_task = TaskPacket(
        title="t",
        parent_task_id="other-root",
        metadata={"decomposition_role": "review", "target_child": "reviewer"},
    )

    revision = plan_revision(failed_result(), failed_task=failed_task)

    assert revision is not None
    assert revision.metadata["decomposition_role"] == "implementation"
    assert revision.metadata["target_child"] == "coder"
    assert revision.parent_task_id == "t-root"


def test_a_failed_task_already_revised_is_not_revised_from_a_bare_result() -> None:
    failed_task = TaskPacket(
        title="t",
        metadata={"decomposition_role": "review", "decomposition_revision_depth": "1"},
    )
    result = TaskResult(task_id=failed_task.id, produced_by="r", status=TaskStatus.FAILED)

    assert plan_revision(result, failed_task=failed_task) is None

"""TaskRouter rules (docs/rules/routing.md, "Router rules") and the fixes over the reference."""

from __future__ import annotations

import pytest

from organization.genome import (
    LeafOperationSpec,
    NodeLifecycleStatus,
    OrganizationalGenome,
    ViableNode,
    add_child,
    nested,
    single_coder,
)
from workers.domain.messages import TaskPacket
from workers.domain.routing import NoRouteableChild, NotMetasystem, route

ROOT = "root-codebase-system"


def task(**metadata: str) -> TaskPacket:
    return TaskPacket(title="Add a health-check endpoint", metadata=dict(metadata))


def with_reviewer(genome: OrganizationalGenome, parent: str = ROOT) -> OrganizationalGenome:
    add_child(
        genome, parent, ViableNode.leaf("reviewer", LeafOperationSpec.reviewer(), id="reviewer")
    )
    return genome


def test_a_leaf_cannot_route() -> None:
    with pytest.raises(NotMetasystem, match="primary-code-service"):
        route(single_coder(), "primary-code-service", task())


def test_code_writing_goes_to_the_first_leaf_that_can_write_code() -> None:
    genome = with_reviewer(single_coder())

    decision = route(genome, ROOT, task(requires_code_write="true"))

    assert decision.child_id == "primary-code-service"


def test_a_required_capability_skips_leaves_without_it() -> None:
    genome = with_reviewer(single_coder())

    assert route(genome, ROOT, task(required_capability="review")).child_id == "reviewer"


def test_an_explicit_assignment_wins() -> None:
    genome = with_reviewer(single_coder())
    packet = task(requires_code_write="true")
    packet.assigned_to = "reviewer"

    assert route(genome, ROOT, packet).reason == "task already assigned to direct child"


def test_target_child_matches_by_id_or_name() -> None:
    genome = with_reviewer(single_coder())

    assert route(genome, ROOT, task(target_child="reviewer")).child_id == "reviewer"
    assert "matched target_child" in route(genome, ROOT, task(target_child="reviewer")).reason


def test_a_metasystem_child_is_chosen_only_if_a_leaf_below_can_take_the_task() -> None:
    genome = with_reviewer(nested())  # root -> [backend-system -> backend-coder, reviewer]

    assert route(genome, ROOT, task(requires_code_write="true")).child_id == "backend-system"
    # The reference would pick backend-system first for a review too; nothing below it reviews.
    assert route(genome, ROOT, task(required_capability="review")).child_id == "reviewer"


def test_retired_children_are_skipped_by_every_rule() -> None:
    genome = with_reviewer(single_coder())
    genome.nodes["reviewer"].status = NodeLifecycleStatus.RETIRED
    packet = task(target_child="reviewer")
    packet.assigned_to = "reviewer"

    with pytest.raises(NoRouteableChild, match="review"):
        route(genome, ROOT, task(required_capability="review"))
    assert route(genome, ROOT, packet).child_id == "primary-code-service"


def test_denied_capabilities_from_a_command_are_enforced() -> None:
    genome = single_coder()

    with pytest.raises(NoRouteableChild, match="write_code"):
        route(
            genome, ROOT, task(requires_code_write="true", command_denied_capabilities="write_code")
        )


def test_denied_capabilities_in_an_ancestors_system_5_policy_are_enforced() -> None:
    genome = nested()
    genome.nodes["backend-system"].system_5.denied_capabilities = ["write_code"]

    with pytest.raises(NoRouteableChild, match="no live leaf below can provide write_code"):
        route(genome, ROOT, task(requires_code_write="true"))
    assert route(genome, ROOT, task(required_capability="research")).child_id == "backend-system"

"""validate() finds every way a hand-edited genome can stop being one tree."""

from __future__ import annotations

import pytest

from organization.genome import (
    ChannelConfig,
    ChannelDirection,
    GenomeInvalid,
    OrganizationalGenome,
    ViableNode,
    VsmChannelType,
    genome_problems,
    nested,
    validate,
)

ROOT, SYSTEM, CODER = "root-codebase-system", "backend-system", "backend-coder"


def problems_after(change: object) -> list[str]:
    genome = nested()
    change(genome)  # type: ignore[operator]
    with pytest.raises(GenomeInvalid) as raised:
        validate(genome)
    assert raised.value.problems == genome_problems(genome)
    return raised.value.problems


def test_a_stock_genome_is_valid() -> None:
    validate(nested())
    assert genome_problems(nested()) == []


def test_it_reports_a_missing_root() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.root_node_id = "nobody"

    problems = problems_after(change)

    assert "root node 'nobody' is missing from nodes" in problems
    assert f"node {ROOT!r} has no parent: a second root" in problems


def test_it_reports_a_root_with_a_parent() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes[ROOT].parent_id = CODER
        g.nodes[CODER].children.append(ROOT)

    problems = problems_after(change)

    assert f"root node {ROOT!r} has parent {CODER!r}" in problems
    assert any(p.startswith("parent links form a cycle") for p in problems)


def test_it_reports_a_second_root() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes["stray"] = ViableNode(name="stray", id="stray")

    assert problems_after(change) == [
        "node 'stray' has no parent: a second root",
        f"node 'stray' is not reachable from the root {ROOT!r}",
    ]


def test_it_reports_a_cycle_of_parent_links() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes["x"] = ViableNode(name="x", id="x", parent_id="y", children=["y"])
        g.nodes["y"] = ViableNode(name="y", id="y", parent_id="x", children=["x"])

    problems = problems_after(change)

    assert "parent links form a cycle: x -> y -> x" in problems
    assert "node 'x' is not reachable from the root 'root-codebase-system'" in problems


def test_it_reports_dangling_links_in_both_directions() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes[SYSTEM].children.append("ghost")
        g.nodes[CODER].parent_id = "phantom"

    problems = problems_after(change)

    assert f"node {SYSTEM!r} lists missing child 'ghost'" in problems
    assert f"node {SYSTEM!r} lists child {CODER!r}, whose parent is 'phantom'" in problems
    assert f"node {CODER!r} names missing parent 'phantom'" in problems


def test_it_reports_a_child_its_parent_does_not_list() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes[SYSTEM].children.remove(CODER)

    problems = problems_after(change)

    assert f"node {CODER!r} names parent {SYSTEM!r}, which does not list it as a child" in problems
    assert f"node {CODER!r} is not reachable from the root {ROOT!r}" in problems


def test_it_reports_a_child_listed_twice_or_under_two_parents() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes[SYSTEM].children.append(CODER)
        g.nodes[ROOT].children.append(CODER)

    problems = problems_after(change)

    assert f"node {SYSTEM!r} lists child {CODER!r} 2 times" in problems
    assert f"node {CODER!r} is listed as a child of [{SYSTEM!r}, {ROOT!r}]" in problems


def test_it_reports_channels_to_missing_nodes_and_duplicate_channel_ids() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.channels.append(
            ChannelConfig(
                id=g.channels[0].id,
                channel_type=VsmChannelType.COMMAND,
                from_node_id=ROOT,
                to_node_id="ghost",
                direction=ChannelDirection.PARENT_TO_CHILD,
            )
        )

    problems = problems_after(change)

    assert (
        f"channel '{ROOT}->{SYSTEM}:ResourceBargaining' (channels[10]) to missing node 'ghost'"
        in problems
    )
    assert f"channel id '{ROOT}->{SYSTEM}:ResourceBargaining' is used by 2 channels" in problems


def test_it_reports_a_node_stored_under_another_key() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes[CODER].id = "renamed"

    assert f"node stored under key {CODER!r} has id 'renamed'" in problems_after(change)


def test_it_reports_a_wrongly_typed_field_instead_of_crashing() -> None:
    def change(g: OrganizationalGenome) -> None:
        g.nodes[CODER].children = "abc"  # type: ignore[assignment]

    assert problems_after(change) == [f'field nodes.{CODER}.children: expected a list, got "abc"']


def test_the_error_message_lists_every_problem() -> None:
    genome = nested()
    genome.nodes["a"] = ViableNode(name="a", id="a")
    genome.nodes["b"] = ViableNode(name="b", id="b")

    with pytest.raises(GenomeInvalid, match=r"genome is invalid \(4 problems\): node 'a' has"):
        validate(genome)

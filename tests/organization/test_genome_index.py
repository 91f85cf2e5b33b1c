"""The channel index of a frozen genome finds what the walk over its channels finds."""

from __future__ import annotations

import copy
import gc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from organization.genome import (
    ChannelConfig,
    ChannelDirection,
    OrganizationalGenome,
    VsmChannelType,
    channels_at,
    channels_between,
    fan_out_organization,
    genome_freeze,
    genome_is_frozen,
    nested,
    standard_channel_bundle,
)
from organization.genome.index import _frozen
from tests.organization.strategies import channels, genomes

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def walked_between(genome: OrganizationalGenome, one: str | None, other: str | None) -> list[str]:
    ends = {(one, other), (other, one)}
    return [c.id for c in genome.channels if (c.from_node_id, c.to_node_id) in ends]


def walked_at(genome: OrganizationalGenome, node_id: str) -> list[str]:
    return [c.id for c in genome.channels if node_id in (c.from_node_id, c.to_node_id)]


def ends_of(genome: OrganizationalGenome) -> list[str | None]:
    return [None, "no-such-node", *genome.nodes]


def assert_lookups_match_the_walk(genome: OrganizationalGenome) -> None:
    for one in ends_of(genome):
        for other in ends_of(genome):
            found = [c.id for c in channels_between(genome, one, other)]
            assert found == walked_between(genome, one, other), (one, other)
        if one is not None:
            assert [c.id for c in channels_at(genome, one)] == walked_at(genome, one), one


@pytest.mark.slow
@PROPERTY
@given(genomes(), st.data())
def test_a_frozen_genomes_lookups_are_the_walks_in_order(
    genome: OrganizationalGenome, data: st.DataObject
) -> None:
    # More channels than the strategy's two extras: self-loops, environment ends, both ways.
    endpoints = st.none() | st.sampled_from(list(genome.nodes))
    extra = data.draw(st.lists(channels(endpoints), max_size=8))
    genome.channels.extend(extra)
    unfrozen = copy.deepcopy(genome)

    genome_freeze(genome)

    assert genome_is_frozen(genome) and not genome_is_frozen(unfrozen)
    assert_lookups_match_the_walk(genome)
    assert_lookups_match_the_walk(unfrozen)


def test_a_frozen_fan_out_organization_finds_each_edges_bundle_and_nothing_else() -> None:
    genome = fan_out_organization(40)
    genome_freeze(genome)

    assert_lookups_match_the_walk(genome)
    bundle = {c.id for c in standard_channel_bundle("n-1", "n-11")}
    assert {c.id for c in channels_between(genome, "n-11", "n-1")} == bundle
    assert channels_between(genome, "root-codebase-system", "n-11") == ()  # a grandchild
    assert channels_between(genome, "n-1", "n-2") == ()  # siblings


def test_a_genome_nobody_froze_is_walked_so_its_changes_show() -> None:
    genome = nested()
    before = list(channels_between(genome, "root-codebase-system", "backend-system"))

    genome.channels.append(
        ChannelConfig(
            id="extra",
            channel_type=VsmChannelType.RESOURCE_BARGAINING,
            from_node_id="backend-system",
            to_node_id="root-codebase-system",
            direction=ChannelDirection.BIDIRECTIONAL,
        )
    )

    after = channels_between(genome, "root-codebase-system", "backend-system")
    assert [c.id for c in after] == [*(c.id for c in before), "extra"]
    assert [c.id for c in channels_at(genome, "backend-system")][-1] == "extra"


def test_a_frozen_genome_leaves_the_registry_when_it_is_collected() -> None:
    genome = nested()
    genome_freeze(genome)
    channels_at(genome, "backend-system")  # builds its index
    key = id(genome)
    assert key in _frozen

    del genome
    gc.collect()

    assert key not in _frozen

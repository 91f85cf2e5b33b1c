"""Fitness of traces, of nodes, and of the metasystems above them (docs/rules/fitness.md)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.fitness import (
    DEFAULT_WEIGHTS,
    FitnessWeights,
    TraceFacts,
    ancestor_credits,
    attributed_fitness,
    attributed_fitness_by_node,
    coordination_units,
    direct_fitness,
    summed_direct_score,
    trace_score,
)

LEAF, PARENT, ROOT = "leaf", "parent", "root"


def facts(
    outcome: float = 0.0, *, node: str = LEAF, ancestors: tuple[str, ...] = (), **fields
) -> TraceFacts:
    return TraceFacts(
        assigned_node_id=node, responsible_ancestor_ids=ancestors, outcome_score=outcome, **fields
    )


# -- weights (docs/rules/fitness.md, "Weights") ----------------------------------------------


def test_default_weights_are_the_references():
    assert dataclasses.asdict(FitnessWeights()) == {
        "accepted_merge_value": 10.0,
        "failed_task_penalty": 5.0,
        "reverted_penalty": 30.0,
        "regression_penalty": 25.0,
        "human_override_penalty": 20.0,
        "token_cost_weight": 0.00001,
        "latency_ms_weight": 0.000001,
        "line_delta_weight": 0.001,
        "coordination_message_weight": 0.05,
        "org_complexity_weight": 0.25,
        "direct_weight": 1.0,
        "ancestor_initial_weight": 1.0,
        "ancestor_decay": 0.5,
    }


def test_ancestor_weight_halves_with_each_step_up():
    assert [DEFAULT_WEIGHTS.ancestor_weight(depth) for depth in range(4)] == [1.0, 0.5, 0.25, 0.125]


# -- per-trace score (docs/rules/fitness.md, "Per-trace score") ------------------------------


def test_spec_vector_coordination_units_cost_three_and_a_quarter_of_ten():
    trace = facts(
        10.0,
        metadata={
            "task_metadata.vsm_source_channel": "System2Coordination",
            "vsm_outbound_channel": "System2Coordination",
            "task_metadata.dependency_task_ids": "task-a,task-b",
            "task_metadata.handoff_kind": "operation_to_operation",
            "decomposition_role": "review",
            "trial_shadow": "true",
        },
    )
    assert coordination_units(trace.metadata) == 6.75
    assert trace_score(trace, FitnessWeights(coordination_message_weight=1.0)) == pytest.approx(
        3.25
    )


def test_a_bare_trace_scores_its_outcome():
    assert trace_score(facts(7.5)) == 7.5


def test_delayed_adjustments_add_to_the_outcome():
    assert trace_score(facts(10.0, delayed_adjustment_deltas=(-3.0, 0.5))) == 7.5


@pytest.mark.parametrize(
    ("outcome_field", "value", "expected"),
    [
        ("merged", True, 10.0),
        ("merged", False, -5.0),
        ("merged", None, 0.0),
        ("reverted", True, -30.0),
        ("reverted", False, 0.0),
        ("post_merge_regression", True, -25.0),
        ("human_override", True, -20.0),
        ("human_override", False, 0.0),
    ],
)
def test_outcomes_add_credit_or_penalty(outcome_field, value, expected):
    assert trace_score(facts(**{outcome_field: value})) == expected


def test_costs_are_tokens_latency_and_absolute_line_churn():
    trace = facts(
        input_tokens=60_000,
        output_tokens=40_000,
        latency_ms=2_000_000,
        lines_added=-300,
        lines_deleted=200,
    )
    assert trace_score(trace) == pytest.approx(-1.0 - 2.0 - 0.5)


def test_unscored_facts_do_not_move_the_score():
    trace = facts(
        1.0,
        tool_calls=40,
        files_touched_count=9,
        tests_run_count=12,
        tests_passed=False,
        review_passed=False,
    )
    assert trace_score(trace) == 1.0


@pytest.mark.parametrize(
    ("metadata", "units"),
    [
        ({}, 0.0),
        ({"coordination_message_count": "3"}, 3.0),
        ({"task_metadata.coordination_message_count": "2.5"}, 2.5),
        ({"coordination_message_count": " 3"}, 0.0),
        ({"coordination_message_count": "1_000"}, 0.0),
        ({"coordination_message_count": "inf"}, 0.0),
        ({"coordination_message_count": "NaN", "handoff_kind": "x"}, 1.0),
        ({"coordination_message_count": "-5", "management_kind": "m"}, 0.0),
        ({"source_channel": "Algedonic"}, 2.0),
        ({"vsm_source_channel": "Command", "source_channel": "Algedonic"}, 1.0),
        ({"vsm_source_channel": "Bogus", "source_channel": "Algedonic"}, 0.0),
        ({"vsm_outbound_channel": "Algedonic"}, 1.0),
        ({"dependency_task_ids": "a| b ,,  ,c"}, 3.0),
        ({"handoff_kind": ""}, 1.0),
        ({"decomposition_revision_depth": "1"}, 1.0),
        ({"decomposition_revision_depth": "+2"}, 1.0),
        ({"decomposition_revision_depth": "0"}, 0.0),
        ({"decomposition_revision_depth": "-1"}, 0.0),
        ({"decomposition_revision_depth": "4294967296"}, 0.0),
        ({"decomposition_role": "implementation"}, 0.0),
        ({"decomposition_role": "test"}, 0.5),
        ({"trial_shadow": "YES"}, 1.0),
        ({"trial_shadow": "false"}, 0.0),
    ],
)
def test_coordination_units_follow_the_metadata(metadata, units):
    assert coordination_units(metadata) == units


def test_the_plain_key_wins_over_the_task_metadata_copy():
    metadata = {"vsm_source_channel": "Command", "task_metadata.vsm_source_channel": "Algedonic"}
    assert coordination_units(metadata) == 1.0


# -- direct fitness (docs/rules/fitness.md, "Direct fitness") --------------------------------


def test_direct_fitness_groups_by_assigned_node_and_subtracts_complexity():
    traces = [
        facts(10.0, merged=True, input_tokens=5, output_tokens=5, latency_ms=7),
        facts(1.0, reverted=True, post_merge_regression=True, human_override=True),
        facts(2.0, node="other"),
    ]
    summaries = direct_fitness(traces, complexity_by_node={LEAF: 4.0})

    assert list(summaries) == [LEAF, "other"]
    leaf = summaries[LEAF]
    assert (leaf.task_count, leaf.merged_count, leaf.reverted_count) == (2, 1, 1)
    assert (leaf.regression_count, leaf.human_override_count) == (1, 1)
    assert (leaf.tokens, leaf.latency_ms) == (10, 7)
    assert leaf.raw_score == pytest.approx(20.0 - 0.0001 - 0.000007 + 1.0 - 75.0)
    assert leaf.complexity_penalty == 1.0
    assert leaf.final_score == pytest.approx(leaf.raw_score - 1.0)
    assert summaries["other"].final_score == 2.0


def test_summed_direct_score_ignores_complexity_and_ancestors():
    traces = [facts(3.0, ancestors=(PARENT, ROOT)), facts(4.0, node="other")]
    assert summed_direct_score(traces) == 7.0


# -- attributed fitness (docs/rules/fitness.md, "Test vectors") ------------------------------


def test_spec_vector_immediate_parent_gets_full_credit_for_a_leaf_trace():
    summaries = attributed_fitness_by_node([facts(10.0, ancestors=(PARENT,))])

    leaf, parent = summaries[LEAF], summaries[PARENT]
    assert (leaf.direct_task_count, leaf.subtree_task_count) == (1, 1)
    assert leaf.direct_score == leaf.final_score == 10.0
    assert (parent.direct_task_count, parent.descendant_task_count) == (0, 1)
    assert parent.subtree_task_count == 1
    assert parent.descendant_score == parent.final_score == 10.0


def test_spec_vector_grandparent_gets_half_credit():
    summaries = attributed_fitness_by_node([facts(8.0, ancestors=(PARENT, ROOT))])

    assert summaries[PARENT].descendant_score == 8.0
    assert summaries[PARENT].attribution_weight_total == 1.0
    assert summaries[ROOT].descendant_score == 4.0
    assert summaries[ROOT].attribution_weight_total == 0.5


def test_spec_vector_delayed_adjustment_reaches_leaf_and_parent():
    trace = facts(10.0, ancestors=(PARENT,), delayed_adjustment_deltas=(-3.0,))
    summaries = attributed_fitness_by_node([trace])

    assert summaries[LEAF].direct_score == 7.0
    assert summaries[PARENT].descendant_score == 7.0


def test_spec_vector_complexity_four_costs_one_point():
    summary = attributed_fitness(LEAF, [facts(10.0)], complexity=4.0)

    assert summary.raw_score == 10.0
    assert summary.complexity_penalty == 1.0
    assert summary.final_score == 9.0


def test_subtree_totals_include_descendant_tokens_and_latency():
    traces = [
        facts(1.0, ancestors=(PARENT,), input_tokens=10, latency_ms=5),
        facts(1.0, node=PARENT, ancestors=(ROOT,), output_tokens=3, latency_ms=2),
    ]
    parent = attributed_fitness(PARENT, traces)

    assert (parent.direct_tokens, parent.subtree_tokens) == (3, 13)
    assert (parent.direct_latency_ms, parent.subtree_latency_ms) == (2, 7)
    assert (parent.direct_task_count, parent.descendant_task_count) == (1, 1)
    assert parent.attribution_weight_total == 2.0


def test_a_repeated_or_self_ancestor_is_skipped_but_keeps_its_depth():
    trace = facts(8.0, ancestors=(LEAF, PARENT, PARENT, ROOT))
    assert list(ancestor_credits(trace, DEFAULT_WEIGHTS)) == [(PARENT, 0.5), (ROOT, 0.125)]

    summaries = attributed_fitness_by_node([trace])
    assert summaries[LEAF].direct_task_count == 1
    assert summaries[LEAF].descendant_task_count == 0
    assert summaries[PARENT].descendant_task_count == 1
    assert summaries[ROOT].descendant_score == 1.0


def test_an_ancestor_with_zero_weight_gets_no_credit_and_no_count():
    weights = FitnessWeights(ancestor_decay=0.0)
    summaries = attributed_fitness_by_node([facts(8.0, ancestors=(PARENT, ROOT))], weights)

    assert summaries[PARENT].descendant_score == 8.0
    assert ROOT not in summaries
    assert attributed_fitness(ROOT, [facts(8.0, ancestors=(PARENT, ROOT))], weights).raw_score == 0


def test_a_node_no_trace_mentions_has_an_empty_summary():
    summary = attributed_fitness("stranger", [facts(5.0, ancestors=(PARENT,))], complexity=2.0)

    assert summary.subtree_task_count == 0
    assert summary.raw_score == 0.0
    assert summary.final_score == -0.5


# -- properties --------------------------------------------------------------------------------

node_ids = st.sampled_from(["a", "b", "c", "d", "e"])
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
outcome_flags = st.none() | st.booleans()


@st.composite
def trace_facts(draw, node=node_ids):
    return TraceFacts(
        assigned_node_id=draw(node),
        responsible_ancestor_ids=tuple(draw(st.lists(node_ids, max_size=5))),
        outcome_score=draw(finite),
        delayed_adjustment_deltas=tuple(draw(st.lists(finite, max_size=3))),
        input_tokens=draw(st.integers(0, 10**7)),
        output_tokens=draw(st.integers(0, 10**7)),
        latency_ms=draw(st.integers(0, 10**8)),
        lines_added=draw(st.integers(-(10**5), 10**5)),
        lines_deleted=draw(st.integers(-(10**5), 10**5)),
        merged=draw(outcome_flags),
        reverted=draw(outcome_flags),
        post_merge_regression=draw(outcome_flags),
        human_override=draw(outcome_flags),
        metadata=draw(
            st.dictionaries(
                st.sampled_from(
                    [
                        "vsm_source_channel",
                        "task_metadata.source_channel",
                        "dependency_task_ids",
                        "handoff_kind",
                        "decomposition_role",
                        "trial_shadow",
                        "coordination_message_count",
                    ]
                ),
                st.sampled_from(["Algedonic", "Command", "a,b", "review", "true", "2", "x"]),
            )
        ),
    )


@given(st.floats(0, 10, allow_nan=False), st.floats(0, 1, allow_nan=False), st.integers(0, 30))
def test_ancestor_weights_never_grow_with_depth(initial, decay, depth):
    weights = FitnessWeights(ancestor_initial_weight=initial, ancestor_decay=decay)
    assert 0 <= weights.ancestor_weight(depth + 1) <= weights.ancestor_weight(depth) <= initial


@pytest.mark.slow  # property test
@given(st.lists(trace_facts(node=st.just(LEAF)), max_size=6), st.floats(0, 100))
def test_a_leaf_without_descendants_has_attributed_equal_to_direct_fitness(traces, complexity):
    # The leaf is nobody's ancestor here, so with the default direct weight of 1 its attributed
    # fitness is exactly its direct fitness.
    traces = [dataclasses.replace(t, responsible_ancestor_ids=(PARENT, ROOT)) for t in traces]
    attributed = attributed_fitness(LEAF, traces, complexity=complexity)
    direct = direct_fitness(traces, complexity_by_node={LEAF: complexity}).get(LEAF)

    assert attributed.descendant_task_count == 0
    if direct is None:
        assert attributed.raw_score == 0.0
        return
    assert attributed.direct_task_count == attributed.subtree_task_count == direct.task_count
    assert attributed.direct_tokens == attributed.subtree_tokens == direct.tokens
    assert attributed.direct_latency_ms == direct.latency_ms
    assert attributed.raw_score == direct.raw_score
    assert attributed.final_score == direct.final_score


@pytest.mark.slow  # property test
@given(st.lists(trace_facts(), max_size=8))
def test_one_node_attribution_agrees_with_the_whole_organisation(traces):
    everyone = attributed_fitness_by_node(traces)
    for node_id, summary in everyone.items():
        assert attributed_fitness(node_id, traces) == summary


@pytest.mark.slow  # property test
@given(st.lists(trace_facts(), max_size=8))
def test_direct_scores_sum_to_the_summed_direct_score(traces):
    summaries = direct_fitness(traces)
    assert sum(s.task_count for s in summaries.values()) == len(traces)
    assert sum(s.raw_score for s in summaries.values()) == pytest.approx(
        summed_direct_score(traces), rel=1e-9, abs=1e-6
    )


@given(trace_facts(), finite)
def test_delayed_adjustments_shift_every_credited_score_by_their_weight(trace, delta):
    adjusted = dataclasses.replace(
        trace, delayed_adjustment_deltas=(*trace.delayed_adjustment_deltas, delta)
    )
    assert trace_score(adjusted) == pytest.approx(trace_score(trace) + delta, abs=1e-6)
    before, after = attributed_fitness_by_node([trace]), attributed_fitness_by_node([adjusted])
    for node_id, summary in before.items():
        weight = summary.attribution_weight_total
        assert after[node_id].raw_score == pytest.approx(
            summary.raw_score + delta * weight, abs=1e-6
        )


@pytest.mark.slow  # property test
@given(trace_facts())
def test_coordination_units_are_never_negative(trace):
    assert coordination_units(trace.metadata) >= 0

"""The layered layout of a directive's task graph (igraph's Sugiyama on our layering)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.processes import BASE_DIR
from workers.task_graph_layout import layered_dag, layered_dag_cached


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]]]:
    """A random DAG in a random order: each task may depend on any task made before it."""
    size = draw(st.integers(min_value=0, max_value=40))
    made = [f"t{index}" for index in range(size)]
    depends_on = {
        task: draw(st.lists(st.sampled_from(made[:index]), max_size=4)) if index else []
        for index, task in enumerate(made)
    }
    return draw(st.permutations(made)), depends_on


# Twice the profile's count: 200 in the whole suite, 50 in the fast run (tests/conftest.py).
@settings(max_examples=2 * settings().max_examples, deadline=None)
@given(dags())
def test_every_task_sits_one_column_past_its_deepest_dependency_and_none_overlap(
    dag: tuple[list[str], dict[str, list[str]]],
) -> None:
    ids, depends_on = dag
    layout = layered_dag(ids, depends_on)
    places = layout.places
    assert set(places) == set(ids) and layout.cyclic == []
    for task in ids:
        deepest = max((places[d].column for d in depends_on[task]), default=-1)
        assert places[task].column == deepest + 1
    # Every dependency is an edge, bending once in each column it crosses.
    assert set(layout.edges) == {(d, task) for task in ids for d in depends_on[task]}
    occupied: dict[int, list[float]] = {}
    for (start, end), waypoints in layout.edges.items():
        columns = [point.column for point in waypoints]
        assert columns == list(range(places[start].column + 1, places[end].column))
        for point in waypoints:
            occupied.setdefault(point.column, []).append(point.row)
    for place in places.values():
        occupied.setdefault(place.column, []).append(place.row)
    # Nothing shares a spot: tasks and the bends of long edges are a row apart at least.
    for rows in occupied.values():
        rows.sort()
        assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(rows))
    if ids:
        assert min(row for rows in occupied.values() for row in rows) == 0


def test_the_same_shape_gets_the_same_picture_and_is_computed_once() -> None:
    ids = ("implementation", "test", "review")
    shape = (("implementation", ()), ("test", ("implementation",)), ("review", ("test",)))
    first = layered_dag_cached(ids, shape)
    assert layered_dag_cached(ids, shape) is first
    assert first == layered_dag(list(ids), dict(shape))
    assert [first.places[task].column for task in ids] == [0, 1, 2]


def test_dependencies_on_tasks_not_drawn_and_repeated_ones_are_ignored() -> None:
    layout = layered_dag(["a", "b"], {"b": ["a", "a", "elsewhere", "b"]})
    assert list(layout.edges) == [("a", "b")]
    assert (layout.places["a"].column, layout.places["b"].column) == (0, 1)


def test_a_cycle_is_drawn_with_one_edge_left_out_of_the_layering() -> None:
    layout = layered_dag(["a", "b", "c"], {"a": ["c"], "b": ["a"], "c": ["b"]})
    assert len(layout.cyclic) == 1 and len(layout.edges) == 2
    assert set(layout.edges) | set(layout.cyclic) == {("c", "a"), ("a", "b"), ("b", "c")}
    assert sorted(place.column for place in layout.places.values()) == [0, 1, 2]


def test_nothing_to_draw_is_an_empty_picture() -> None:
    layout = layered_dag([], {})
    assert (layout.places, layout.edges, layout.columns) == ({}, {}, 0)


# python-igraph 1.0 crashed the whole process (SIGSEGV) now and then when its Sugiyama layout
# had to split long edges itself; a crash cannot be caught in-process, so thousands of random
# graphs, some of them wide, long and dense, run in a child process that must exit cleanly.
STRESS = textwrap.dedent(
    """
    import random
    from workers.task_graph_layout import layered_dag

    for seed in range(SEEDS):
        rng = random.Random(seed)
        size = rng.randint(1, 60)
        density = rng.random() * 0.3
        ids = [f"t{i}" for i in range(size)]
        depends_on = {
            task: [ids[j] for j in range(i) if rng.random() < density]
            for i, task in enumerate(ids)
        }
        rng.shuffle(ids)
        layout = layered_dag(ids, depends_on)
        assert len(layout.places) == size
    print("ok")
    """
)


@pytest.mark.slow
def test_thousands_of_random_graphs_never_crash_the_process() -> None:
    run = subprocess.run(
        [sys.executable, "-c", STRESS.replace("SEEDS", "2000")],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"exit {run.returncode} (-11 is a segfault):\n{run.stderr[-2000:]}"
    assert run.stdout.strip() == "ok"

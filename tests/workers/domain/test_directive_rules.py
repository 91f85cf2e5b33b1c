"""The directive rules every way in shares (API, command line, dashboard form)."""

from __future__ import annotations

from workers.domain.directive_rules import directive_errors, find_cycle


def errors(**fields: object) -> dict[str, list[str]]:
    base: dict[str, object] = {
        "title": "t",
        "metadata": {},
        "acceptance": [],
        "planned_tasks": [],
        "node_exists": lambda name: name == "coder",
    }
    return directive_errors(**{**base, **fields})  # type: ignore[arg-type]


def test_a_plain_directive_has_no_errors() -> None:
    assert errors(metadata={"target_child": "coder", "decompose": "true"}) == {}


def test_it_names_an_unknown_target_and_a_flag_that_is_not_strictly_boolean() -> None:
    found = errors(metadata={"target_child": "ghost", "requires_review": "yes"})
    assert found == {
        "metadata": [
            "target_child: No node is called 'ghost'.",
            'requires_review: Must be "true" or "false".',
        ]
    }


def test_it_refuses_a_blank_title_and_duplicate_acceptance_names() -> None:
    found = errors(title="  ", acceptance=[{"name": "a"}, {"name": "a"}])
    assert set(found) == {"title", "acceptance"}


def test_a_plan_with_a_cycle_names_the_cycle() -> None:
    plan = [
        {"key": "a", "depends_on": ["b"]},
        {"key": "b", "depends_on": ["c"]},
        {"key": "c", "depends_on": ["a"]},
    ]
    assert errors(planned_tasks=plan) == {"tasks": ["Dependencies form a cycle: a → b → c → a."]}


def test_a_plan_naming_an_unknown_task_or_a_key_twice_is_refused() -> None:
    assert (
        "unknown task 'z'" in errors(planned_tasks=[{"key": "a", "depends_on": ["z"]}])["tasks"][0]
    )
    twice = [{"key": "a", "depends_on": []}, {"key": "a", "depends_on": []}]
    assert errors(planned_tasks=twice) == {"tasks": ["Task keys must be unique: a."]}


def test_find_cycle_returns_none_for_a_dag() -> None:
    assert find_cycle({"a": ["b", "c"], "b": ["c"], "c": []}) is None


def chain(length: int) -> dict[str, list[str]]:
    """t0 ← t1 ← … ← t(n-1), and t0 depends on the last: one cycle through every task."""
    return {f"t{n}": [f"t{(n - 1) % length}"] for n in range(length)}


def test_a_cycle_through_two_thousand_tasks_is_found_without_recursion() -> None:
    cycle = find_cycle(chain(2000))

    assert cycle is not None
    assert (len(cycle), cycle[0], cycle[-1]) == (2001, "t0", "t0")


def test_a_long_cycle_is_named_by_its_ends_and_its_length() -> None:
    plan = [{"key": key, "depends_on": deps} for key, deps in chain(2000).items()]

    (message,) = errors(planned_tasks=plan)["tasks"]

    assert message.startswith("Dependencies form a cycle of 2000 tasks: t0 → t1999 → t1998")
    assert message.endswith("t2 → t1 → t0.")
    assert len(message) < 300


def test_a_chain_of_twenty_thousand_tasks_has_no_cycle() -> None:
    graph = {f"t{n}": [f"t{n - 1}"] if n else [] for n in range(20_000)}

    assert find_cycle(graph) is None


def test_a_directive_whose_text_no_column_can_store_is_refused() -> None:
    texts = {"title": [("a\x00b", 500)], "constraints": [("fine", 10), ("x" * 11, 10)]}

    found = errors(texts=texts, metadata={"key\ud800": "v"})

    assert "NUL" in found["title"][0]
    assert found["constraints"] == ["At most 10 characters (this has 11)."]
    assert "surrogate (U+D800)" in found["metadata"][0]
    assert "\\ud800" in found["metadata"][0]  # shown escaped: a message must itself be text

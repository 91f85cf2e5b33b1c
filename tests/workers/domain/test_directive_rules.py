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

"""What makes a directive acceptable beyond its JSON shape: pure rules, no Django.

One set of rules for every way in (the REST API, the command line, the dashboard form):
``directive_errors`` returns field → messages, empty when the directive may run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from typing import Any

from workers.domain.input_rules import MAX_PLANNED_TASKS, text_errors
from workers.domain.input_rules import metadata_errors as metadata_limit_errors

# Metadata flags read as strict booleans by the mapper, the router and decomposition.
BOOLEAN_METADATA = ("requires_code_write", "decompose", "requires_tests", "requires_review")
# A cycle longer than this is named by its first and last tasks and its length.
CYCLE_SHOWN = 10


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None.

    ``graph`` maps each task to the tasks it depends on. The standard library's sorter
    walks the graph without recursion, so a plan of thousands of tasks cannot exhaust the
    stack; its CycleError lists each node before the one that depends on it, so the path
    is read backwards to say "a depends on b".
    """
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return list(reversed(error.args[1]))
    return None


def cycle_message(cycle: Sequence[str]) -> str:
    """The cycle for a person to read: whole when short, else its ends and its length."""
    tasks = len(cycle) - 1
    if tasks <= CYCLE_SHOWN:
        return f"Dependencies form a cycle: {' → '.join(cycle)}."
    ends = [*cycle[: CYCLE_SHOWN // 2], "…", *cycle[-(CYCLE_SHOWN // 2) :]]
    return f"Dependencies form a cycle of {tasks} tasks: {' → '.join(ends)}."


def _duplicates(names: Sequence[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)


def metadata_errors(metadata: Mapping[str, str], node_exists: Callable[[str], bool]) -> list[str]:
    if limits := metadata_limit_errors(metadata):
        return limits  # nothing else is read from metadata a column could not store
    errors = []
    target = metadata.get("target_child")
    if target and not node_exists(target):
        errors.append(f"target_child: No node is called {target!r}.")
    errors.extend(
        f'{key}: Must be "true" or "false".'
        for key in BOOLEAN_METADATA
        if key in metadata and metadata[key] not in ("true", "false")
    )
    return errors


def plan_errors(tasks: Sequence[Mapping[str, Any]]) -> list[str]:
    """An operator's plan: not too many tasks, unique keys, dependencies on known tasks, no
    cycle."""
    if len(tasks) > MAX_PLANNED_TASKS:
        return [f"A plan has at most {MAX_PLANNED_TASKS} tasks (this has {len(tasks)})."]
    keys = [str(task["key"]) for task in tasks]
    duplicates = _duplicates(keys)
    if duplicates:
        return [f"Task keys must be unique: {', '.join(duplicates)}."]
    known = set(keys)
    for task in tasks:
        if found := metadata_limit_errors(task.get("metadata", {})):
            return [f"Task {task['key']!r}: metadata: {' '.join(found)}"]
        unknown = [key for key in task.get("depends_on", []) if key not in known]
        if unknown:
            return [f"Task {task['key']!r} depends on unknown task {unknown[0]!r}."]
    cycle = find_cycle({str(task["key"]): list(task.get("depends_on", [])) for task in tasks})
    if cycle:
        return [cycle_message(cycle)]
    return []


def directive_errors(
    *,
    title: str,
    metadata: Mapping[str, str],
    acceptance: Sequence[Mapping[str, Any]],
    planned_tasks: Sequence[Mapping[str, Any]],
    node_exists: Callable[[str], bool],
    texts: Mapping[str, Sequence[tuple[str, int | None]]] | None = None,
) -> dict[str, list[str]]:
    """Field → messages for everything wrong with a directive; empty if it may run.

    ``texts`` maps each text field (title, body, constraints, acceptance…) to its values,
    each with the most characters it may have (the column's, which the caller knows): a
    value no column can store, or a longer one, is refused here for every way in.
    """
    errors: dict[str, list[str]] = {}
    for field, values in (texts or {}).items():
        for text, max_length in values:
            if found := text_errors(text, max_length=max_length):
                errors[field] = found
                break
    if not title.strip() and "title" not in errors:
        errors["title"] = ["A directive needs a title."]
    if found := metadata_errors(metadata, node_exists):
        errors["metadata"] = found
    duplicates = _duplicates([str(item["name"]) for item in acceptance])
    if duplicates:
        errors["acceptance"] = [f"Acceptance item names must be unique: {', '.join(duplicates)}."]
    if found := plan_errors(planned_tasks):
        errors["tasks"] = found
    return errors

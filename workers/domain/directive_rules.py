"""What makes a directive acceptable beyond its JSON shape: pure rules, no Django.

One set of rules for every way in (the REST API, the command line, the dashboard form):
``directive_errors`` returns field → messages, empty when the directive may run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Metadata flags read as strict booleans by the mapper, the router and decomposition.
BOOLEAN_METADATA = ("requires_code_write", "decompose", "requires_tests", "requires_review")


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "visiting"
        stack.append(node)
        for dependency in graph[node]:
            if state.get(dependency) == "visiting":
                return [*stack[stack.index(dependency) :], dependency]
            if dependency not in state:
                found = visit(dependency)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _duplicates(names: Sequence[str]) -> list[str]:
    return sorted({name for name in names if names.count(name) > 1})


def metadata_errors(metadata: Mapping[str, str], node_exists: Callable[[str], bool]) -> list[str]:
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
    """An operator's plan: unique keys, dependencies on known tasks, no cycle."""
    keys = [str(task["key"]) for task in tasks]
    duplicates = _duplicates(keys)
    if duplicates:
        return [f"Task keys must be unique: {', '.join(duplicates)}."]
    for task in tasks:
        unknown = [key for key in task.get("depends_on", []) if key not in keys]
        if unknown:
            return [f"Task {task['key']!r} depends on unknown task {unknown[0]!r}."]
    cycle = find_cycle({str(task["key"]): list(task.get("depends_on", [])) for task in tasks})
    if cycle:
        return [f"Dependencies form a cycle: {' → '.join(cycle)}."]
    return []


def directive_errors(
    *,
    title: str,
    metadata: Mapping[str, str],
    acceptance: Sequence[Mapping[str, Any]],
    planned_tasks: Sequence[Mapping[str, Any]],
    node_exists: Callable[[str], bool],
) -> dict[str, list[str]]:
    """Field → messages for everything wrong with a directive; empty if it may run."""
    errors: dict[str, list[str]] = {}
    if not title.strip():
        errors["title"] = ["A directive needs a title."]
    if found := metadata_errors(metadata, node_exists):
        errors["metadata"] = found
    duplicates = _duplicates([str(item["name"]) for item in acceptance])
    if duplicates:
        errors["acceptance"] = [f"Acceptance item names must be unique: {', '.join(duplicates)}."]
    if found := plan_errors(planned_tasks):
        errors["tasks"] = found
    return errors

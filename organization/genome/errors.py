"""Errors raised by the genome package.

Every error a caller can cause is a subclass of :class:`GenomeError`, so an API layer can turn
all of them into one 4xx response; the message always names the node, field or id at fault.
"""

from __future__ import annotations


class GenomeError(Exception):
    """Base class of every error the genome package raises on bad input."""


class NodeNotFound(GenomeError):
    def __init__(self, node_id: str, *, role: str = "node") -> None:
        self.node_id = node_id
        super().__init__(f"{role} {node_id!r} does not exist in the genome")


class NodeAlreadyExists(GenomeError):
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(f"node {node_id!r} already exists in the genome")


class CannotRemoveRoot(GenomeError):
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        super().__init__(f"node {node_id!r} is the root of the genome and cannot be removed")


class NodeIsNotLeaf(GenomeError):
    def __init__(self, node_id: str, children: list[str], *, reason: str | None = None) -> None:
        self.node_id = node_id
        self.children = list(children)
        detail = reason or "it is already a metasystem"
        super().__init__(f"node {node_id!r} has children {self.children!r}: {detail}")


class PromptComponentNotFound(GenomeError):
    def __init__(self, node_id: str, component_id: str) -> None:
        self.node_id = node_id
        self.component_id = component_id
        super().__init__(f"node {node_id!r} has no prompt component with id {component_id!r}")


class GenomeFormatError(GenomeError):
    """JSON that does not describe a genome or patch; the message starts with the JSON path."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class GenomeInvalid(GenomeError):
    """A genome whose structure breaks an invariant; ``problems`` lists every one found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"genome is invalid ({count} {noun}): " + "; ".join(self.problems))


class AdminOnlySettings(GenomeError):
    """A candidate would add or change settings only an admin may give (``privileges``)."""

    def __init__(self, escalations: list[str]) -> None:
        self.escalations = list(escalations)
        super().__init__(
            "only an admin may give a node the command provider or set provider.command.* "
            "or sandbox.* (with 'python manage.py genome_patch' on the champion), never a "
            "candidate: " + "; ".join(self.escalations)
        )

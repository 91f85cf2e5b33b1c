"""Runtime capabilities (docs/rules/genome.md): derived only from structure and the leaf spec.

A node with children is a metasystem: it manages and can never write code, whatever its leaf
spec or prompt says. A leaf gets exactly the operational rights its spec allows and no
management powers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import overload

from organization.genome.model import OrganizationalGenome, ViableNode

CAPABILITY_PREFIX = "can_"


@dataclass(frozen=True, kw_only=True)
class RuntimeCapabilities:
    # Operational (System 1) capabilities.
    can_write_code: bool = False
    can_run_tests: bool = False
    can_review: bool = False
    can_research: bool = False
    can_integrate: bool = False
    can_read_filesystem: bool = False
    can_write_filesystem: bool = False
    # Management powers, held only by metasystems.
    can_delegate: bool = False
    can_audit_children: bool = False
    can_mutate_child_topology: bool = False
    can_issue_command: bool = False
    can_coordinate: bool = False
    can_allocate_resources: bool = False
    can_run_future_probes: bool = False


# The names tasks use in ``required_capability``; any other name is allowed (docs/rules/genome.md).
TASK_CAPABILITY_FIELDS: dict[str, str] = {
    "write_code": "can_write_code",
    "run_tests": "can_run_tests",
    "review": "can_review",
    "research": "can_research",
    "integrate": "can_integrate",
    "read_filesystem": "can_read_filesystem",
    "write_filesystem": "can_write_filesystem",
}


def _node_capabilities(node: ViableNode) -> RuntimeCapabilities:
    if node.is_metasystem:
        return RuntimeCapabilities(
            can_research=True,
            can_integrate=True,
            can_read_filesystem=True,
            can_delegate=True,
            can_audit_children=True,
            can_mutate_child_topology=True,
            can_issue_command=True,
            can_coordinate=True,
            can_allocate_resources=True,
            can_run_future_probes=True,
        )
    spec = node.leaf_operation
    return RuntimeCapabilities(
        can_write_code=spec.allows_code_write,
        can_run_tests=spec.allows_test_execution,
        can_review=spec.allows_review,
        can_research=spec.allows_research,
        can_integrate=spec.allows_integration,
        can_read_filesystem=spec.allows_filesystem_read,
        can_write_filesystem=spec.allows_filesystem_write,
    )


@overload
def derive_capabilities(subject: ViableNode) -> RuntimeCapabilities: ...
@overload
def derive_capabilities(subject: OrganizationalGenome, node_id: str) -> RuntimeCapabilities: ...
def derive_capabilities(
    subject: ViableNode | OrganizationalGenome, node_id: str | None = None
) -> RuntimeCapabilities:
    """Capabilities of a node, given either the node or a genome and a node id."""
    if isinstance(subject, OrganizationalGenome):
        if node_id is None:
            raise TypeError("derive_capabilities(genome, node_id) needs a node id")
        return _node_capabilities(subject.node(node_id))
    return _node_capabilities(subject)


def capability_allows(capabilities: RuntimeCapabilities, name: str) -> bool:
    """Whether a task's ``required_capability`` is met; unknown names are allowed."""
    field_name = TASK_CAPABILITY_FIELDS.get(name)
    if field_name is None:
        return True
    return bool(getattr(capabilities, field_name))


def capability_names(capabilities: RuntimeCapabilities) -> list[str]:
    """Sorted names (without ``can_``) of the capabilities that are true."""
    return sorted(
        f.name.removeprefix(CAPABILITY_PREFIX)
        for f in dataclasses.fields(capabilities)
        if getattr(capabilities, f.name)
    )

"""Command channel (docs/rules/channels.md): a non-negotiable order from a metasystem to a child.

``command_to_task`` turns a Command into the TaskPacket the controller routes,
relaying the System 5 policy (values, constraints, denied capabilities) as
constraints and ``command_*`` metadata. Unlike the reference, the relayed denied
capabilities are enforced: the router and the leaf refuse a task that needs one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from workers.domain.messages import RiskClass, TaskPacket, new_id


@dataclass(kw_only=True)
class Command:
    issued_by: str
    target: str
    title: str
    body: str = ""
    non_negotiable: bool = True
    legal_or_policy_basis: str | None = None
    system5_identity: str | None = None
    policy_values: list[str] = field(default_factory=list)
    non_negotiable_constraints: list[str] = field(default_factory=list)
    denied_capabilities: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)


RAW_METADATA_KEYS = ("required_capability", "requires_code_write", "target_child")


def command_risk(command: Command) -> RiskClass:
    if (
        command.legal_or_policy_basis
        or command.non_negotiable_constraints
        or command.denied_capabilities
    ):
        return RiskClass.CRITICAL
    return RiskClass.HIGH if command.non_negotiable else RiskClass.MEDIUM


def command_to_task(command: Command, *, directive_id: str | None = None) -> TaskPacket:
    constraints = []
    if command.non_negotiable:
        constraints.append("non-negotiable command")
    basis = command.legal_or_policy_basis
    if basis:
        constraints.append(f"policy basis: {basis}")
    if command.system5_identity:
        constraints.append(f"system5 identity: {command.system5_identity}")
    constraints += [f"policy value: {value}" for value in command.policy_values]
    constraints += [
        f"non-negotiable policy constraint: {c}" for c in command.non_negotiable_constraints
    ]
    constraints += [f"denied capability: {d}" for d in command.denied_capabilities]
    metadata = {f"command_metadata.{k}": v for k, v in command.metadata.items()}
    metadata.update({k: command.metadata[k] for k in RAW_METADATA_KEYS if k in command.metadata})
    metadata.update(
        {
            "vsm_channel": "Command",
            "command_issued_by": command.issued_by,
            "command_non_negotiable": "true" if command.non_negotiable else "false",
            "command_target_node_id": command.target,
            "command_policy_values": "|".join(command.policy_values),
            "command_policy_constraints": "|".join(command.non_negotiable_constraints),
            "command_denied_capabilities": "|".join(command.denied_capabilities),
        }
    )
    if command.system5_identity:
        metadata["command_system5_identity"] = command.system5_identity
    if basis:
        metadata["legal_or_policy_basis"] = basis
        metadata["command_legal_or_policy_basis"] = basis
    if directive_id:
        metadata["directive_id"] = directive_id
    return TaskPacket(
        id=new_id(),
        directive_id=directive_id,
        title=command.title,
        goal=command.body,
        constraints=constraints,
        authority_refs=[basis] if basis else [],
        risk=command_risk(command),
        assigned_to=command.target,
        metadata=metadata,
    )

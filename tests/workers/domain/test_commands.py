"""Command → TaskPacket (docs/rules/channels.md, "Command channel") and its policy relay."""

from __future__ import annotations

from workers.domain.commands import Command, command_to_task
from workers.domain.messages import RiskClass


def test_a_command_carries_its_policy_as_constraints_and_metadata() -> None:
    command = Command(
        issued_by="root-codebase-system",
        target="primary-code-service",
        title="Rotate the API keys",
        body="Now.",
        legal_or_policy_basis="security policy 7",
        system5_identity="root",
        policy_values=["safety", "honesty"],
        non_negotiable_constraints=["no downtime"],
        denied_capabilities=["write_code"],
        metadata={"required_capability": "research", "ticket": "SEC-1"},
    )

    task = command_to_task(command, directive_id="d-1")

    assert task.assigned_to == "primary-code-service"
    assert task.risk is RiskClass.CRITICAL
    assert task.constraints == [
        "non-negotiable command",
        "policy basis: security policy 7",
        "system5 identity: root",
        "policy value: safety",
        "policy value: honesty",
        "non-negotiable policy constraint: no downtime",
        "denied capability: write_code",
    ]
    assert task.authority_refs == ["security policy 7"]
    assert task.metadata["command_denied_capabilities"] == "write_code"
    assert task.metadata["command_policy_values"] == "safety|honesty"
    assert task.metadata["command_metadata.ticket"] == "SEC-1"
    assert task.metadata["required_capability"] == "research"
    assert task.metadata["command_non_negotiable"] == "true"


def test_risk_follows_the_command_shape() -> None:
    plain = Command(issued_by="a", target="b", title="t", non_negotiable=False)
    firm = Command(issued_by="a", target="b", title="t")

    assert command_to_task(plain).risk is RiskClass.MEDIUM
    assert command_to_task(firm).risk is RiskClass.HIGH

"""Enumerations of the genome; each serialises as its variant name (``"ResourceBargaining"``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar


class NodeLifecycleStatus(StrEnum):
    SHADOW = "Shadow"
    PROBATION = "Probation"
    ACTIVE = "Active"
    RETIRED = "Retired"


class VsmChannelType(StrEnum):
    RESOURCE_BARGAINING = "ResourceBargaining"
    COMMAND = "Command"
    SYSTEM2_COORDINATION = "System2Coordination"
    AUDIT = "Audit"
    THREE_FOUR_HOMEOSTAT = "ThreeFourHomeostat"
    MANAGEMENT_TO_OPERATION = "ManagementToOperation"
    OPERATION_TO_OPERATION = "OperationToOperation"
    OPERATION_TO_ENVIRONMENT = "OperationToEnvironment"
    FUTURE_PROBE_TO_ENVIRONMENT = "FutureProbeToEnvironment"
    ENVIRONMENT_TO_ENVIRONMENT = "EnvironmentToEnvironment"
    ALGEDONIC = "Algedonic"


_PRIORITY_RANKS = {"Low": 0, "Normal": 1, "High": 2, "Critical": 3, "Interrupt": 4}


class ChannelPriority(StrEnum):
    """Ordered by urgency (``LOW < ... < INTERRUPT``), not alphabetically as plain strings."""

    LOW = "Low"
    NORMAL = "Normal"
    HIGH = "High"
    CRITICAL = "Critical"
    INTERRUPT = "Interrupt"

    @property
    def rank(self) -> int:
        return _PRIORITY_RANKS[self.value]

    def __lt__(self, other: object) -> bool:
        if isinstance(other, ChannelPriority):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, ChannelPriority):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, ChannelPriority):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, ChannelPriority):
            return self.rank >= other.rank
        return NotImplemented


class ChannelDirection(StrEnum):
    PARENT_TO_CHILD = "ParentToChild"
    CHILD_TO_PARENT = "ChildToParent"
    SIBLING_TO_SIBLING = "SiblingToSibling"
    NODE_TO_ENVIRONMENT = "NodeToEnvironment"
    ENVIRONMENT_TO_NODE = "EnvironmentToNode"
    BIDIRECTIONAL = "Bidirectional"


class PromptOrigin(StrEnum):
    MANUAL = "Manual"
    MUTATION = "Mutation"
    SUMMARIZED_MEMORY = "SummarizedMemory"
    TASK_CLUSTER = "TaskCluster"
    SYSTEM_POLICY = "SystemPolicy"


class PromptSection(StrEnum):
    BEHAVIOR_RULES = "BehaviorRules"
    DOMAIN_HINTS = "DomainHints"
    CODEBASE_CONVENTIONS = "CodebaseConventions"
    NEGATIVE_CONSTRAINTS = "NegativeConstraints"
    OUTPUT_CONTRACT = "OutputContract"


STANDARD_LEAF_KINDS = (
    "Coding",
    "Reviewing",
    "Testing",
    "Research",
    "Integration",
    "Documentation",
    "Planning",
)


@dataclass(frozen=True)
class LeafKind:
    """What a System 1 leaf does: one of the standard kinds or ``Custom(name)``.

    Serialises as ``"Coding"`` for a standard kind and ``{"Custom": "x"}`` for a custom one.
    """

    name: str
    is_custom: bool = False

    CODING: ClassVar[LeafKind]
    REVIEWING: ClassVar[LeafKind]
    TESTING: ClassVar[LeafKind]
    RESEARCH: ClassVar[LeafKind]
    INTEGRATION: ClassVar[LeafKind]
    DOCUMENTATION: ClassVar[LeafKind]
    PLANNING: ClassVar[LeafKind]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"leaf kind name must be a string, got {self.name!r}")
        if not self.is_custom and self.name not in STANDARD_LEAF_KINDS:
            raise ValueError(
                f"unknown leaf kind {self.name!r}; expected one of "
                f"{', '.join(STANDARD_LEAF_KINDS)} or LeafKind.custom(name)"
            )

    @classmethod
    def custom(cls, name: str) -> LeafKind:
        return cls(name=name, is_custom=True)

    def __str__(self) -> str:
        return f"Custom({self.name})" if self.is_custom else self.name


LeafKind.CODING = LeafKind("Coding")
LeafKind.REVIEWING = LeafKind("Reviewing")
LeafKind.TESTING = LeafKind("Testing")
LeafKind.RESEARCH = LeafKind("Research")
LeafKind.INTEGRATION = LeafKind("Integration")
LeafKind.DOCUMENTATION = LeafKind("Documentation")
LeafKind.PLANNING = LeafKind("Planning")

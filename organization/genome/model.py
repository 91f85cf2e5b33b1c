"""The organizational genome as plain dataclasses (docs/rules/genome.md).

Field names are the JSON wire names (snake_case); the only exceptions are a channel's endpoints,
``from_node_id``/``to_node_id``, which travel as ``"from"``/``"to"`` (``from`` is a Python keyword).
Every dataclass is keyword-only, so adding a field never silently shifts positional arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ledger.chain import new_id as new_id  # one kind of id for every app
from organization.genome.enums import (
    ChannelDirection,
    ChannelPriority,
    LeafKind,
    NodeLifecycleStatus,
    PromptOrigin,
    VsmChannelType,
)
from organization.genome.errors import GenomeInvalid, NodeNotFound

JSON_NAME = "json_name"


@dataclass(kw_only=True)
class System5Policy:
    identity: str = "unclassified viable node"
    values: list[str] = field(default_factory=list)
    non_negotiable_constraints: list[str] = field(default_factory=list)
    denied_capabilities: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class System4Config:
    future_probe_enabled: bool = True
    probe_interval_seconds: int | None = None
    watched_environments: list[str] = field(default_factory=list)
    horizon: str | None = None


@dataclass(kw_only=True)
class System3Config:
    can_allocate_budget: bool = True
    can_decompose_tasks: bool = True
    can_issue_commands: bool = True
    can_integrate_child_outputs: bool = True
    max_parallel_children: int | None = None
    default_task_budget_tokens: int | None = None


@dataclass(kw_only=True)
class System3StarConfig:
    audit_enabled: bool = True
    audit_interval_seconds: int | None = None
    audit_window_tasks: int = 50
    gene_suggestion_enabled: bool = True


@dataclass(kw_only=True)
class LeafOperationSpec:
    """What a leaf may do; the default (empty) spec allows nothing."""

    kind: LeafKind | None = None
    allows_code_write: bool = False
    allows_test_execution: bool = False
    allows_review: bool = False
    allows_research: bool = False
    allows_integration: bool = False
    allows_filesystem_read: bool = False
    allows_filesystem_write: bool = False

    @classmethod
    def coding(cls) -> LeafOperationSpec:
        return cls(
            kind=LeafKind.CODING,
            allows_code_write=True,
            allows_test_execution=True,
            allows_research=True,
            allows_filesystem_read=True,
            allows_filesystem_write=True,
        )

    @classmethod
    def reviewer(cls) -> LeafOperationSpec:
        return cls(
            kind=LeafKind.REVIEWING,
            allows_test_execution=True,
            allows_review=True,
            allows_research=True,
            allows_filesystem_read=True,
        )

    @classmethod
    def tester(cls) -> LeafOperationSpec:
        return cls(
            kind=LeafKind.TESTING,
            allows_test_execution=True,
            allows_filesystem_read=True,
        )


@dataclass(kw_only=True)
class ModelSpec:
    provider: str = "abstract"
    model: str = "unbound"
    effort: str | None = None
    max_context_tokens: int | None = None


@dataclass(kw_only=True)
class PromptComponent:
    id: str = field(default_factory=new_id)
    text: str
    tags: list[str] = field(default_factory=list)
    origin: PromptOrigin = PromptOrigin.MANUAL
    active: bool = True


@dataclass(kw_only=True)
class PromptGenome:
    base_identity: str = ""
    behavior_rules: list[PromptComponent] = field(default_factory=list)
    domain_hints: list[PromptComponent] = field(default_factory=list)
    codebase_conventions: list[PromptComponent] = field(default_factory=list)
    negative_constraints: list[PromptComponent] = field(default_factory=list)
    output_contract: PromptComponent | None = None


@dataclass(kw_only=True)
class ToolSpec:
    name: str
    description: str | None = None
    permissions: list[str] = field(default_factory=list)
    enabled: bool = True


@dataclass(kw_only=True)
class ContextPolicy:
    fixed_context_refs: list[str] = field(default_factory=list)
    retrievable_context_refs: list[str] = field(default_factory=list)
    max_retrieval_tokens: int | None = None
    max_total_task_tokens: int | None = None


@dataclass(kw_only=True)
class PermissionSpec:
    allowed_paths: list[str] = field(default_factory=list)
    denied_paths: list[str] = field(default_factory=list)
    allowed_tools: list[str] = field(default_factory=list)
    denied_tools: list[str] = field(default_factory=list)
    requires_human_approval: bool = False


@dataclass(kw_only=True)
class ChannelConfig:
    id: str = field(default_factory=new_id)
    channel_type: VsmChannelType
    from_node_id: str | None = field(default=None, metadata={JSON_NAME: "from"})
    to_node_id: str | None = field(default=None, metadata={JSON_NAME: "to"})
    direction: ChannelDirection
    enabled: bool = True
    required: bool = False
    priority: ChannelPriority = ChannelPriority.NORMAL
    max_messages_per_epoch: int | None = None
    max_token_budget_per_epoch: int | None = None
    activation_predicate: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class ViableNode:
    """One recursive VSM unit: a System 1 leaf when it has no children, else a metasystem."""

    id: str = field(default_factory=new_id)
    parent_id: str | None = None
    name: str
    system_5: System5Policy = field(default_factory=System5Policy)
    system_4: System4Config = field(default_factory=System4Config)
    system_3: System3Config = field(default_factory=System3Config)
    system_3_star: System3StarConfig = field(default_factory=System3StarConfig)
    children: list[str] = field(default_factory=list)
    leaf_operation: LeafOperationSpec = field(default_factory=LeafOperationSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    prompt: PromptGenome = field(default_factory=PromptGenome)
    tools: list[ToolSpec] = field(default_factory=list)
    context_policy: ContextPolicy = field(default_factory=ContextPolicy)
    permissions: PermissionSpec = field(default_factory=PermissionSpec)
    channels: list[ChannelConfig] = field(default_factory=list)
    age_epochs: int = 0
    status: NodeLifecycleStatus = NodeLifecycleStatus.ACTIVE
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def leaf(cls, name: str, spec: LeafOperationSpec, id: str | None = None) -> ViableNode:
        return cls(id=new_id() if id is None else id, name=name, leaf_operation=spec)

    @classmethod
    def metasystem(cls, name: str, id: str | None = None) -> ViableNode:
        # A metasystem is only a metasystem once it has children; until then it is a leaf
        # whose empty spec allows nothing.
        return cls(id=new_id() if id is None else id, name=name, leaf_operation=LeafOperationSpec())

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def is_metasystem(self) -> bool:
        return bool(self.children)


@dataclass(kw_only=True)
class GenomeLineage:
    parent_genome_ids: list[str] = field(default_factory=list)
    mutation_ids: list[str] = field(default_factory=list)
    created_at_unix_ms: int | None = None


@dataclass(kw_only=True)
class OrganizationalGenome:
    id: str = field(default_factory=new_id)
    root_node_id: str
    nodes: dict[str, ViableNode] = field(default_factory=dict)
    channels: list[ChannelConfig] = field(default_factory=list)
    lineage: GenomeLineage = field(default_factory=GenomeLineage)
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_root(cls, root: ViableNode, id: str | None = None) -> OrganizationalGenome:
        """A one-node genome; the root must arrive detached (no parent, no children)."""
        if root.parent_id is not None or root.children:
            raise GenomeInvalid(
                [f"root node {root.id!r} must have no parent and no children to start a genome"]
            )
        return cls(id=new_id() if id is None else id, root_node_id=root.id, nodes={root.id: root})

    def node(self, node_id: str) -> ViableNode:
        """The node with that id, or NodeNotFound."""
        try:
            return self.nodes[node_id]
        except KeyError:
            raise NodeNotFound(node_id) from None

    @property
    def root(self) -> ViableNode:
        return self.node(self.root_node_id)

"""Settings only an admin may give a node: what runs shell commands, and what it can reach.

A node with the ``command`` provider runs a program on a worker; ``provider.command.*`` says
which program and which of the worker's variables it sees; ``sandbox.*`` loosens its sandbox
(network). Those are an admin's decisions (docs/operations.md, "Roles"), made on the champion
with ``manage.py genome_patch`` by someone with a shell on the server. A candidate genome
(from an audit, a homeostat, an agent's suggestion or a generation's operators) may keep or
drop them but never add or change them: ``privilege_escalations`` says where one would.
"""

from __future__ import annotations

from organization.genome.model import OrganizationalGenome, ViableNode

ADMIN_ONLY_PROVIDER = "command"
ADMIN_ONLY_METADATA_PREFIXES = ("provider.command.", "sandbox.")
WRAPPED_PROVIDER_KEY = "provider.replay.wrapped"


def privileged_settings(node: ViableNode) -> dict[str, str]:
    """The node's admin-only settings, as flat key → value."""
    settings = {
        key: value
        for key, value in node.metadata.items()
        if key.startswith(ADMIN_ONLY_METADATA_PREFIXES)
    }
    if node.model.provider.strip() == ADMIN_ONLY_PROVIDER:
        settings["model.provider"] = ADMIN_ONLY_PROVIDER
    if node.metadata.get(WRAPPED_PROVIDER_KEY, "").strip() == ADMIN_ONLY_PROVIDER:
        settings[WRAPPED_PROVIDER_KEY] = ADMIN_ONLY_PROVIDER
    return settings


def privilege_escalations(before: OrganizationalGenome, after: OrganizationalGenome) -> list[str]:
    """Each admin-only setting ``after`` adds or changes relative to ``before``, by node."""
    problems = []
    for node_id, node in after.nodes.items():
        old = before.nodes.get(node_id)
        had = privileged_settings(old) if old is not None else {}
        for key, value in sorted(privileged_settings(node).items()):
            if had.get(key) != value:
                problems.append(f"node {node_id!r} would get {key}={value!r}")
    return problems

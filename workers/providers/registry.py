"""Choosing a node's provider from its genome: ``node.model.provider`` plus its options."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from organization.genome import ViableNode
from workers.providers.base import ModelProvider, ProviderError
from workers.providers.command import CommandProvider
from workers.providers.echo import EchoProvider
from workers.providers.options import ProviderOptions
from workers.providers.replay import ReplayProvider
from workers.providers.sandbox import SandboxConfigError, SandboxHost, SandboxOptions
from workers.providers.scripted import ScriptedProvider

PROVIDER_NAMES = ("command", "echo", "openai", "replay", "scripted")


def provider_for(
    node: ViableNode,
    *,
    environ: Mapping[str, str],
    recordings_dir: Path,
    sandbox: SandboxHost | None = None,
) -> ModelProvider:
    """The provider named by the node's model spec, configured from its ``provider.*`` metadata.

    ``sandbox`` is what the worker's admin decided for agents (default: bubblewrap required,
    nothing extra visible or hidden). Raises ProviderError(``missing_config``) for an unknown
    provider name, an unknown or unparsable option, or a missing API key: all fixed in the
    genome or the worker's environment, never by retrying.
    """
    return _build(node.model.provider.strip(), node, environ, recordings_dir, sandbox)


def _build(
    name: str,
    node: ViableNode,
    environ: Mapping[str, str],
    recordings_dir: Path,
    sandbox: SandboxHost | None,
) -> ModelProvider:
    options = ProviderOptions(node.metadata, name)
    if name == "echo":
        return EchoProvider.from_options(options)
    if name == "scripted":
        return ScriptedProvider.from_options(options)
    if name == "command":
        try:
            network = SandboxOptions.from_metadata(node.metadata).network
        except SandboxConfigError as error:
            raise ProviderError("missing_config", str(error)) from error
        return CommandProvider.from_options(
            options, environ=environ, sandbox=sandbox, network=network
        )
    if name == "openai":
        # The openai client takes half a second to import; most workers never need it.
        from workers.providers.openai_responses import OpenAIResponsesProvider

        return OpenAIResponsesProvider.from_options(options, environ=environ)
    if name == "replay":
        return ReplayProvider.from_options(
            options,
            recordings_dir=recordings_dir,
            node_id=node.id,
            wrappable=[other for other in PROVIDER_NAMES if other != "replay"],
            build_wrapped=lambda wrapped: _build(wrapped, node, environ, recordings_dir, sandbox),
        )
    raise ProviderError(
        "missing_config",
        f"node {node.name!r} names model provider {name!r}; "
        f"valid providers: {', '.join(PROVIDER_NAMES)}",
    )

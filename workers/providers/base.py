"""What every model provider speaks (docs/rules/leaf.md): requests, responses, errors."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from organization.genome import ModelSpec

ProviderErrorKind = Literal["missing_config", "request", "invalid_response", "timeout"]
PROVIDER_ERROR_KINDS: tuple[str, ...] = get_args(ProviderErrorKind)


@dataclass(kw_only=True)
class ModelRequest:
    """One prompt for one node: metadata carries ``node_id``, ``node_name`` and ``task_id``."""

    model: ModelSpec
    instructions: str
    input: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Usage:
    input_tokens: int
    output_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(kw_only=True)
class ModelResponse:
    output_text: str
    usage: Usage | None = None
    raw: dict[str, Any] | None = None
    # What the agent changed in the task workspace, as far as the provider can tell.
    files_touched: list[str] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)


class ProviderError(Exception):
    """A provider could not answer.

    ``kind`` says whose move it is: ``missing_config`` (fix the node's model settings or the
    worker environment), ``request`` (the call or the agent failed), ``invalid_response`` (the
    provider answered something we cannot read) or ``timeout``. ``usage`` is what the failed
    attempt still spent, when the provider knows (a failed agent run costs tokens too).
    """

    def __init__(self, kind: ProviderErrorKind, message: str, usage: Usage | None = None) -> None:
        if kind not in PROVIDER_ERROR_KINDS:
            raise ValueError(f"unknown provider error kind {kind!r}")
        super().__init__(message)
        self.kind: ProviderErrorKind = kind
        self.message = message
        self.usage = usage

    def __reduce__(
        self,
    ) -> tuple[type[ProviderError], tuple[ProviderErrorKind, str, Usage | None]]:
        # Celery pickles exceptions; the default would rebuild from ``args`` alone.
        return (type(self), (self.kind, self.message, self.usage))

    def __repr__(self) -> str:
        return f"ProviderError({self.kind!r}, {self.message!r})"


class ModelProvider(Protocol):
    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        """Answer one request; ``workspace`` is the task's working directory."""
        ...


def rough_token_estimate(text: str) -> int:
    """A cheap stand-in when a provider reports no usage: a token per four UTF-8 bytes."""
    return math.ceil(len(text.encode("utf-8")) / 4)

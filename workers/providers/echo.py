"""The echo provider (docs/rules/leaf.md): answers with its own prompt, for wiring and demos."""

from __future__ import annotations

from pathlib import Path

from workers.providers.base import ModelRequest, ModelResponse, Usage, rough_token_estimate
from workers.providers.options import ProviderOptions

DEFAULT_PREFIX = "echo"
OPTIONS = ("prefix",)


class EchoProvider:
    def __init__(self, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix

    @classmethod
    def from_options(cls, options: ProviderOptions) -> EchoProvider:
        options.require_known(OPTIONS)
        return cls(prefix=options.text("prefix", DEFAULT_PREFIX))

    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        output_text = (
            f"{self.prefix}: accepted task.\n\n"
            f"Instructions:\n{request.instructions}\n\n"
            f"Input:\n{request.input}"
        )
        usage = Usage(
            input_tokens=rough_token_estimate(request.instructions)
            + rough_token_estimate(request.input),
            output_tokens=rough_token_estimate(output_text),
        )
        return ModelResponse(output_text=output_text, usage=usage)

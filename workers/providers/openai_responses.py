"""The OpenAI provider: any OpenAI-compatible endpoint, Responses API (docs/rules/leaf.md).

Talks through the official ``openai`` client, which handles retries of rate limits and server
errors. Tests inject an ``httpx2.Client`` (the transport the client is built on) with a mock
transport serving recorded responses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import httpx2
import openai
from openai.types.shared_params import Reasoning

from workers.providers.base import ModelRequest, ModelResponse, ProviderError, Usage
from workers.providers.options import ProviderOptions

OPTIONS = ("base_url", "api_key_env", "default_model", "timeout_seconds", "max_retries")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-5.5"
DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_RETRIES = 2
UNBOUND_MODEL = "unbound"
ERROR_BODY_CHARS = 2000


class OpenAIResponsesProvider:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        default_model: str = DEFAULT_MODEL,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        max_retries: int = DEFAULT_MAX_RETRIES,
        http_client: httpx2.Client | None = None,
    ) -> None:
        self.base_url = base_url
        self.default_model = default_model
        self.client = openai.OpenAI(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=max_retries,
            http_client=http_client,
        )

    @classmethod
    def from_options(
        cls,
        options: ProviderOptions,
        *,
        environ: Mapping[str, str],
        http_client: httpx2.Client | None = None,
    ) -> OpenAIResponsesProvider:
        options.require_known(OPTIONS)
        key_env = options.text("api_key_env", DEFAULT_API_KEY_ENV).strip()
        api_key = environ.get(key_env, "").strip()
        if not api_key:
            raise ProviderError(
                "missing_config",
                f"the openai provider needs an API key in the worker environment variable "
                f"{key_env} (choose another variable with {options.key('api_key_env')})",
            )
        return cls(
            api_key=api_key,
            base_url=options.text(
                "base_url", environ.get("OPENAI_BASE_URL", "").strip() or DEFAULT_BASE_URL
            ),
            default_model=options.text("default_model", DEFAULT_MODEL).strip(),
            timeout_seconds=options.number("timeout_seconds", DEFAULT_TIMEOUT_SECONDS, minimum=0.0),
            max_retries=options.integer("max_retries", DEFAULT_MAX_RETRIES),
            http_client=http_client,
        )

    def model_for(self, request: ModelRequest) -> str:
        model = request.model.model.strip()
        return self.default_model if not model or model == UNBOUND_MODEL else model

    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        effort = (request.model.effort or "").strip()
        reasoning = cast(Reasoning, {"effort": effort}) if effort else openai.omit
        try:
            response = self.client.responses.with_raw_response.create(
                model=self.model_for(request),
                instructions=request.instructions,
                input=request.input,
                reasoning=reasoning,
            )
        except openai.APIStatusError as error:
            body = error.response.text[:ERROR_BODY_CHARS]
            raise ProviderError(
                "request",
                f"OpenAI Responses API at {self.base_url} returned {error.status_code}: {body}",
            ) from error
        except openai.APITimeoutError as error:
            raise ProviderError(
                "timeout", f"OpenAI Responses API at {self.base_url} timed out"
            ) from error
        except openai.APIConnectionError as error:
            raise ProviderError(
                "request", f"cannot reach the OpenAI Responses API at {self.base_url}: {error}"
            ) from error

        try:
            raw = json.loads(response.text)
        except json.JSONDecodeError as error:
            raise ProviderError(
                "invalid_response", f"OpenAI Responses API answered non-JSON: {error}"
            ) from error
        if not isinstance(raw, dict):
            raise ProviderError("invalid_response", "OpenAI Responses API answered a non-object")
        output_text = extract_output_text(raw)
        if output_text is None:
            raise ProviderError(
                "invalid_response",
                f"OpenAI response {raw.get('id', '?')} (status {raw.get('status', '?')}) "
                "has no output text",
            )
        return ModelResponse(output_text=output_text, usage=extract_usage(raw), raw=raw)


def extract_output_text(raw: Mapping[str, Any]) -> str | None:
    """Top-level ``output_text``, else the text parts of the output messages joined by lines.

    Only ``message`` items count: reasoning items may carry text too, and it is not the answer.
    """
    if isinstance(raw.get("output_text"), str):
        return cast(str, raw["output_text"])
    parts: list[str] = []
    output = raw.get("output")
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict) or item.get("type", "message") != "message":
            continue
        content = item.get("content")
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
    return "\n".join(parts) if parts else None


def extract_usage(raw: Mapping[str, Any]) -> Usage | None:
    usage = raw.get("usage")
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0

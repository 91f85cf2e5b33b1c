"""The OpenAI Responses provider, against recorded API responses (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from organization.genome import ModelSpec, ViableNode
from workers.providers import ModelRequest, ProviderError, Usage, provider_for
from workers.providers.openai_responses import OpenAIResponsesProvider
from workers.providers.options import ProviderOptions

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
ENVIRON = {"OPENAI_API_KEY": "sk-test-1234567890"}


class RecordedApi:
    """Serves one recorded response and remembers what it was asked."""

    def __init__(self, fixture: str, status_code: int = 200) -> None:
        self.body = (FIXTURES / fixture).read_bytes()
        self.status_code = status_code
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(
            self.status_code, content=self.body, headers={"content-type": "application/json"}
        )

    @property
    def sent(self) -> dict:
        return json.loads(self.requests[-1].content)


def openai_provider(api: RecordedApi, environ=ENVIRON, **options: str):
    node = ViableNode(
        name="coder",
        model=ModelSpec(provider="openai"),
        metadata={f"provider.openai.{key}": value for key, value in options.items()},
    )
    return OpenAIResponsesProvider.from_options(
        ProviderOptions(node.metadata, "openai"),
        environ=environ,
        http_client=httpx2.Client(transport=httpx2.MockTransport(api)),
    )


def make_request(model: str = "gpt-5.5-codex", effort: str | None = "high") -> ModelRequest:
    return ModelRequest(
        model=ModelSpec(provider="openai", model=model, effort=effort),
        instructions="You are an operational leaf.",
        input='{"title": "Validate limits"}',
        metadata={"node_id": "coder", "node_name": "coder", "task_id": "task-42"},
    )


def test_a_completed_response_gives_the_message_text_and_usage(tmp_path):
    api = RecordedApi("response_completed.json")

    response = openai_provider(api).complete(make_request(), workspace=tmp_path)

    assert response.output_text.startswith("Added input validation to `parse_limit`")
    assert "```diff" in response.output_text
    assert response.usage == Usage(input_tokens=1834, output_tokens=412)
    assert response.raw is not None
    assert response.raw["id"] == "resp_68a1f0c2b9e48190a4d1c3f7e2b5d6a70b1c2d3e4f5a6b7c"


def test_the_request_follows_the_responses_api(tmp_path):
    api = RecordedApi("response_completed.json")

    openai_provider(api).complete(make_request(), workspace=tmp_path)

    sent = api.requests[-1]
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.com/v1/responses"
    assert sent.headers["authorization"] == "Bearer sk-test-1234567890"
    assert api.sent == {
        "model": "gpt-5.5-codex",
        "instructions": "You are an operational leaf.",
        "input": '{"title": "Validate limits"}',
        "reasoning": {"effort": "high"},
    }


def test_an_unbound_model_uses_the_default_and_no_effort_sends_no_reasoning(tmp_path):
    api = RecordedApi("response_completed.json")

    openai_provider(api).complete(make_request(model="unbound", effort=None), workspace=tmp_path)
    openai_provider(api, default_model="gpt-5.5-mini").complete(
        make_request(model=" ", effort=" "), workspace=tmp_path
    )

    first, second = (json.loads(request.content) for request in api.requests)
    assert first["model"] == "gpt-5.5"
    assert second["model"] == "gpt-5.5-mini"
    assert "reasoning" not in first
    assert "reasoning" not in second


def test_the_base_url_comes_from_the_node_or_the_environment(tmp_path):
    api = RecordedApi("response_completed.json")
    environ = {**ENVIRON, "OPENAI_BASE_URL": "http://llm.internal:8000/v1"}

    openai_provider(api, environ=environ).complete(make_request(), workspace=tmp_path)
    openai_provider(api, environ=environ, base_url="https://gateway.example/openai/v1").complete(
        make_request(), workspace=tmp_path
    )

    assert [str(request.url) for request in api.requests] == [
        "http://llm.internal:8000/v1/responses",
        "https://gateway.example/openai/v1/responses",
    ]


def test_an_error_status_is_a_request_error_with_status_and_body(tmp_path):
    api = RecordedApi("error_invalid_api_key.json", status_code=401)

    with pytest.raises(ProviderError) as caught:
        openai_provider(api).complete(make_request(), workspace=tmp_path)

    assert caught.value.kind == "request"
    assert "401" in str(caught.value)
    assert "Incorrect API key provided" in str(caught.value)


def test_with_retries_off_an_error_is_reported_after_one_call(tmp_path):
    api = RecordedApi("error_model_not_found.json", status_code=404)

    with pytest.raises(ProviderError) as caught:
        openai_provider(api, max_retries="0").complete(make_request(), workspace=tmp_path)

    assert "404" in str(caught.value)
    assert "gpt-9-imaginary" in str(caught.value)
    assert len(api.requests) == 1


def test_a_response_without_output_text_is_invalid(tmp_path):
    api = RecordedApi("response_incomplete_without_text.json")

    with pytest.raises(ProviderError) as caught:
        openai_provider(api).complete(make_request(), workspace=tmp_path)

    assert caught.value.kind == "invalid_response"
    assert "incomplete" in str(caught.value)


def test_a_missing_api_key_is_a_configuration_error_naming_the_variable(tmp_path):
    node = ViableNode(name="coder", model=ModelSpec(provider="openai"))

    with pytest.raises(ProviderError) as caught:
        provider_for(node, environ={"PATH": "/usr/bin"}, recordings_dir=tmp_path)

    assert caught.value.kind == "missing_config"
    assert "OPENAI_API_KEY" in str(caught.value)


def test_the_key_can_come_from_another_variable(tmp_path):
    api = RecordedApi("response_completed.json")

    openai_provider(api, environ={"TEAM_LLM_KEY": "sk-team"}, api_key_env="TEAM_LLM_KEY").complete(
        make_request(), workspace=tmp_path
    )

    assert api.requests[-1].headers["authorization"] == "Bearer sk-team"

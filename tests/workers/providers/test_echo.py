"""The echo provider and the token estimate (docs/rules/leaf.md, "Providers")."""

from __future__ import annotations

from organization.genome import ModelSpec, ViableNode
from workers.providers import (
    EchoProvider,
    ModelRequest,
    Usage,
    provider_for,
    rough_token_estimate,
)


def make_request() -> ModelRequest:
    return ModelRequest(
        model=ModelSpec(provider="echo", model="local-echo"),
        instructions="Be brief.",
        input='{"title": "Fix the bug"}',
        metadata={"node_id": "n", "node_name": "n", "task_id": "t-1"},
    )


def test_echo_repeats_its_prompt_after_the_prefix(tmp_path):
    response = EchoProvider().complete(make_request(), workspace=tmp_path)

    assert response.output_text == (
        'echo: accepted task.\n\nInstructions:\nBe brief.\n\nInput:\n{"title": "Fix the bug"}'
    )
    assert response.raw is None
    assert response.files_touched == []


def test_echo_reports_estimated_usage(tmp_path):
    request = make_request()

    response = EchoProvider().complete(request, workspace=tmp_path)

    assert response.usage == Usage(
        input_tokens=rough_token_estimate("Be brief.") + rough_token_estimate(request.input),
        output_tokens=rough_token_estimate(response.output_text),
    )
    assert response.usage.input_tokens == 3 + 6


def test_a_node_can_choose_the_echo_prefix(tmp_path):
    node = ViableNode(
        name="leaf",
        model=ModelSpec(provider="echo"),
        metadata={"provider.echo.prefix": "dry-run"},
    )

    provider = provider_for(node, environ={}, recordings_dir=tmp_path)
    response = provider.complete(make_request(), workspace=tmp_path)

    assert response.output_text.startswith("dry-run: accepted task.\n")


def test_the_token_estimate_counts_utf8_bytes_in_fours_rounding_up():
    assert rough_token_estimate("") == 0
    assert rough_token_estimate("abcd") == 1
    assert rough_token_estimate("abcde") == 2
    assert rough_token_estimate("é") == 1  # two bytes
    assert rough_token_estimate("日本") == 2  # six bytes

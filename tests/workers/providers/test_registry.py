"""Choosing a node's provider from ``node.model.provider`` and its ``provider.*`` metadata."""

from __future__ import annotations

import pickle

import pytest

from organization.genome import ModelSpec, ViableNode
from workers.providers import (
    CommandProvider,
    EchoProvider,
    ProviderError,
    ReplayProvider,
    ScriptedProvider,
    provider_for,
)
from workers.providers.openai_responses import OpenAIResponsesProvider


def node_using(provider: str, **metadata: str) -> ViableNode:
    return ViableNode(name="leaf", model=ModelSpec(provider=provider), metadata=metadata)


@pytest.mark.parametrize(
    ("name", "metadata", "expected"),
    [
        ("echo", {}, EchoProvider),
        ("scripted", {}, ScriptedProvider),
        ("command", {"provider.command.argv": '["true"]'}, CommandProvider),
        ("openai", {}, OpenAIResponsesProvider),
        ("replay", {}, ReplayProvider),
    ],
)
def test_each_provider_name_builds_its_provider(tmp_path, name, metadata, expected):
    provider = provider_for(
        node_using(name, **metadata), environ={"OPENAI_API_KEY": "sk-test"}, recordings_dir=tmp_path
    )

    assert isinstance(provider, expected)


def test_an_unknown_provider_name_lists_the_valid_ones(tmp_path):
    with pytest.raises(ProviderError) as caught:
        provider_for(node_using("abstract"), environ={}, recordings_dir=tmp_path)

    assert caught.value.kind == "missing_config"
    assert "'abstract'" in str(caught.value)
    assert "command, echo, openai, replay, scripted" in str(caught.value)


def test_a_misspelt_option_is_named_instead_of_silently_ignored(tmp_path):
    node = node_using("scripted", **{"provider.scripted.sucess_rate": "0.5"})

    with pytest.raises(ProviderError) as caught:
        provider_for(node, environ={}, recordings_dir=tmp_path)

    assert caught.value.kind == "missing_config"
    assert "provider.scripted.sucess_rate" in str(caught.value)
    assert "provider.scripted.success_rate" in str(caught.value)


def test_options_of_other_providers_are_left_alone(tmp_path):
    node = node_using("echo", **{"provider.scripted.outcome": "fail"})

    assert isinstance(provider_for(node, environ={}, recordings_dir=tmp_path), EchoProvider)


def test_a_provider_error_survives_pickling_with_its_kind():
    error = ProviderError("timeout", "agent timed out")

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.kind, str(copy)) == ("timeout", "agent timed out")

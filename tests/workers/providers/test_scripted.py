"""The scripted provider: deterministic outcomes for demos, tests and evolution runs."""

from __future__ import annotations

import random
import time

import pytest

from organization.genome import ModelSpec, ViableNode
from workers.providers import ModelRequest, ProviderError, Usage, provider_for


def scripted(tmp_path, **options: str):
    node = ViableNode(
        name="leaf",
        model=ModelSpec(provider="scripted"),
        metadata={f"provider.scripted.{key}": value for key, value in options.items()},
    )
    return provider_for(node, environ={}, recordings_dir=tmp_path / "recordings")


def request_for(task_id: str) -> ModelRequest:
    return ModelRequest(
        model=ModelSpec(provider="scripted"),
        instructions="Do the work.",
        input=f'{{"id": "{task_id}"}}',
        metadata={"node_id": "leaf", "node_name": "leaf", "task_id": task_id},
    )


def succeeded(provider, task_id: str, workspace) -> bool:
    try:
        provider.complete(request_for(task_id), workspace=workspace)
    except ProviderError as error:
        assert error.kind == "request"
        return False
    return True


def test_it_succeeds_by_default_with_a_summary_and_estimated_usage(tmp_path):
    response = scripted(tmp_path).complete(request_for("t-1"), workspace=tmp_path)

    assert response.output_text == "scripted: leaf completed task t-1."
    assert response.usage is not None
    assert response.usage.input_tokens > 0


def test_configured_output_and_usage_are_returned(tmp_path):
    provider = scripted(tmp_path, output="All done.", input_tokens="1200", output_tokens="80")

    response = provider.complete(request_for("t-1"), workspace=tmp_path)

    assert response.output_text == "All done."
    assert response.usage == Usage(input_tokens=1200, output_tokens=80)


def test_outcome_fail_raises_a_request_error(tmp_path):
    provider = scripted(tmp_path, outcome="fail", error_message="compiler exploded")

    with pytest.raises(ProviderError) as caught:
        provider.complete(request_for("t-1"), workspace=tmp_path)

    assert caught.value.kind == "request"
    assert str(caught.value) == "compiler exploded"


def test_a_success_rate_decides_by_task_id_whatever_the_call_order(tmp_path):
    task_ids = [f"task-{n}" for n in range(200)]
    first = {
        task_id: succeeded(scripted(tmp_path, success_rate="0.5", seed="7"), task_id, tmp_path)
        for task_id in task_ids
    }
    shuffled = task_ids[:]
    random.Random(3).shuffle(shuffled)
    provider = scripted(tmp_path, success_rate="0.5", seed="7")
    second = {task_id: succeeded(provider, task_id, tmp_path) for task_id in shuffled}

    assert first == second
    assert 60 < sum(first.values()) < 140


def test_a_redelivered_task_gets_the_same_outcome(tmp_path):
    provider = scripted(tmp_path, success_rate="0.5", seed="redelivery")

    outcomes = {task_id: succeeded(provider, task_id, tmp_path) for task_id in ("a", "b", "c")}

    assert all(
        succeeded(provider, task_id, tmp_path) is outcome for task_id, outcome in outcomes.items()
    )


def test_a_different_seed_gives_a_different_pattern(tmp_path):
    task_ids = [f"task-{n}" for n in range(64)]
    one, two = (
        scripted(tmp_path, success_rate="0.5", seed="1"),
        scripted(tmp_path, success_rate="0.5", seed="2"),
    )

    assert [succeeded(one, t, tmp_path) for t in task_ids] != [
        succeeded(two, t, tmp_path) for t in task_ids
    ]


def test_success_rates_of_zero_and_one_are_absolute(tmp_path):
    never, always = scripted(tmp_path, success_rate="0"), scripted(tmp_path, success_rate="1")

    assert not any(succeeded(never, f"t{n}", tmp_path) for n in range(50))
    assert all(succeeded(always, f"t{n}", tmp_path) for n in range(50))


def test_latency_is_honoured(tmp_path):
    provider = scripted(tmp_path, latency_ms="150")

    started = time.monotonic()
    provider.complete(request_for("t-1"), workspace=tmp_path)

    assert time.monotonic() - started >= 0.15


def test_files_touched_are_reported_and_written_into_the_workspace(tmp_path):
    workspace = tmp_path / "workspace"
    provider = scripted(tmp_path, files_touched="src/app.py, docs/notes.md")

    response = provider.complete(request_for("t-9"), workspace=workspace)

    assert response.files_touched == ["src/app.py", "docs/notes.md"]
    assert "t-9" in (workspace / "src" / "app.py").read_text()
    assert (workspace / "docs" / "notes.md").is_file()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"success_rate": "1.5"}, "provider.scripted.success_rate"),
        ({"success_rate": "often"}, "provider.scripted.success_rate"),
        ({"outcome": "maybe"}, "provider.scripted.outcome"),
        ({"latency_ms": "-5"}, "provider.scripted.latency_ms"),
        ({"output_tokens": "lots"}, "provider.scripted.output_tokens"),
        ({"files_touched": "../outside.txt"}, "provider.scripted.files_touched"),
        ({"files_touched": "/etc/passwd"}, "provider.scripted.files_touched"),
        ({"outcome": "fail", "success_rate": "0.5"}, "provider.scripted.outcome"),
    ],
)
def test_invalid_options_name_the_key(tmp_path, options, key):
    with pytest.raises(ProviderError) as caught:
        scripted(tmp_path, **options)

    assert caught.value.kind == "missing_config"
    assert key in str(caught.value)


def test_a_peer_of_the_named_kind_changes_the_success_rate(tmp_path):
    provider = scripted(
        tmp_path, success_rate="0", peer_kind="Reviewing", success_rate_with_peer="1"
    )
    alone = request_for("task-1")
    beside_a_reviewer = request_for("task-1")
    beside_a_reviewer.metadata["peer_leaf_kinds"] = "Reviewing,Testing"

    with pytest.raises(ProviderError):
        provider.complete(alone, workspace=tmp_path)
    assert provider.complete(beside_a_reviewer, workspace=tmp_path).output_text

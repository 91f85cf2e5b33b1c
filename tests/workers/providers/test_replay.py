"""The replay provider: record real answers once, replay them offline."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from organization.genome import ModelSpec, PromptComponent, single_coder
from workers.domain.messages import TaskPacket, new_id
from workers.domain.prompt import build_model_request
from workers.providers import ProviderError, Usage, provider_for, replay_key
from workers.providers.replay import append_jsonl, read_jsonl

LEAF = "primary-code-service"


def genome_with(**metadata: str):
    genome = single_coder()
    leaf = genome.node(LEAF)
    leaf.model = ModelSpec(provider="replay", model="gpt-5.5-codex")
    leaf.metadata = metadata
    return genome


RECORDING = {
    "provider.replay.mode": "record",
    "provider.replay.wrapped": "scripted",
    "provider.scripted.output": "Patched the limit parser.",
    "provider.scripted.input_tokens": "900",
    "provider.scripted.output_tokens": "40",
    "provider.scripted.files_touched": "api/limits.py",
}


def a_run_of_the_same_task() -> TaskPacket:
    """The same work as in another run: every id is new."""
    directive_id = new_id()
    return TaskPacket(
        directive_id=directive_id,
        title="Validate the limit parameter",
        goal=f"Reject non-numeric limits (directive {directive_id})",
        dependencies=[new_id()],
        metadata={"envelope_id": new_id(), "requires_code_write": "true"},
    )


def complete(genome, task, recordings_dir, workspace):
    provider = provider_for(genome.node(LEAF), environ={}, recordings_dir=recordings_dir)
    return provider.complete(build_model_request(genome, LEAF, task), workspace=workspace)


def test_a_recorded_answer_is_replayed_for_the_same_work_in_a_later_run(tmp_path):
    recorded = complete(genome_with(**RECORDING), a_run_of_the_same_task(), tmp_path, tmp_path)

    replayed = complete(genome_with(), a_run_of_the_same_task(), tmp_path, tmp_path / "ws")

    assert replayed == recorded
    assert replayed.output_text == "Patched the limit parser."
    assert replayed.usage == Usage(input_tokens=900, output_tokens=40)
    assert replayed.files_touched == ["api/limits.py"]


def test_recordings_live_in_one_jsonl_file_per_node(tmp_path):
    complete(genome_with(**RECORDING), a_run_of_the_same_task(), tmp_path, tmp_path)

    (line,) = (tmp_path / f"{LEAF}.jsonl").read_text().splitlines()
    entry = json.loads(line)
    assert entry["wrapped"] == "scripted"
    assert entry["response"]["output_text"] == "Patched the limit parser."
    assert entry["request"]["metadata"]["node_id"] == LEAF


def test_a_miss_names_the_key_and_the_recordings_file(tmp_path):
    genome = genome_with()
    task = a_run_of_the_same_task()

    with pytest.raises(ProviderError) as caught:
        complete(genome, task, tmp_path, tmp_path)

    message = str(caught.value)
    assert caught.value.kind == "missing_config"
    assert replay_key(build_model_request(genome, LEAF, task)) in message
    assert str(tmp_path / f"{LEAF}.jsonl") in message
    assert "provider.replay.mode=record" in message


def test_a_changed_prompt_gene_is_a_miss_not_a_stale_answer(tmp_path):
    complete(genome_with(**RECORDING), a_run_of_the_same_task(), tmp_path, tmp_path)
    genome = genome_with()
    genome.node(LEAF).prompt.behavior_rules = [PromptComponent(text="Write the test first.")]

    with pytest.raises(ProviderError, match="no recording"):
        complete(genome, a_run_of_the_same_task(), tmp_path, tmp_path)


def test_a_changed_task_is_a_miss(tmp_path):
    complete(genome_with(**RECORDING), a_run_of_the_same_task(), tmp_path, tmp_path)
    task = a_run_of_the_same_task()
    task.title = "Validate the offset parameter"

    with pytest.raises(ProviderError, match="no recording"):
        complete(genome_with(), task, tmp_path, tmp_path)


def test_a_recorded_failure_replays_as_the_same_failure(tmp_path):
    failing = {
        **RECORDING,
        "provider.scripted.outcome": "fail",
        "provider.scripted.error_message": "tests still red",
    }
    del failing["provider.scripted.output"]
    with pytest.raises(ProviderError):
        complete(genome_with(**failing), a_run_of_the_same_task(), tmp_path, tmp_path)

    with pytest.raises(ProviderError) as caught:
        complete(genome_with(), a_run_of_the_same_task(), tmp_path, tmp_path)

    assert caught.value.kind == "request"
    assert "tests still red" in str(caught.value)


def test_the_latest_recording_of_a_request_wins(tmp_path):
    complete(genome_with(**RECORDING), a_run_of_the_same_task(), tmp_path, tmp_path)
    rerecorded = {**RECORDING, "provider.scripted.output": "Second attempt, better."}
    complete(genome_with(**rerecorded), a_run_of_the_same_task(), tmp_path, tmp_path)

    replayed = complete(genome_with(), a_run_of_the_same_task(), tmp_path, tmp_path)

    assert replayed.output_text == "Second attempt, better."


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ({"provider.replay.mode": "record"}, "provider.replay.wrapped"),
        (
            {"provider.replay.mode": "record", "provider.replay.wrapped": "replay"},
            "provider.replay.wrapped",
        ),
        ({"provider.replay.mode": "rewind"}, "provider.replay.mode"),
        ({"provider.replay.file": "../elsewhere.jsonl"}, "provider.replay.file"),
    ],
)
def test_invalid_replay_options_name_the_key(tmp_path, metadata, key):
    with pytest.raises(ProviderError) as caught:
        provider_for(genome_with(**metadata).node(LEAF), environ={}, recordings_dir=tmp_path)

    assert caught.value.kind == "missing_config"
    assert key in str(caught.value)


def _append_many(path, writer: int) -> None:
    for n in range(40):
        append_jsonl(path, {"key": f"{writer}-{n}", "padding": "x" * 70_000})


def test_processes_appending_at_once_never_corrupt_a_line(tmp_path):
    path = tmp_path / "shared.jsonl"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append_many, args=(path, w)) for w in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=30)

    lines = path.read_text().splitlines()
    assert len(lines) == 120
    assert len(read_jsonl(path)) == 120

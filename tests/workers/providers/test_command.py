"""The command provider: an agent CLI or script run in the task workspace, in the sandbox.

The sandbox's own guarantees (environment, filesystem, processes) are proven in
``test_sandbox.py``; here the provider's contract with the agent.
"""

from __future__ import annotations

import json
import os
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from organization.genome import ModelSpec, ViableNode
from tests.support.sandboxes import SANDBOX_PYTHON, processes_running
from workers.providers import ModelRequest, ProviderError, Usage, provider_for

WORKER_ENVIRON = {
    "PATH": os.environ["PATH"],
    "HOME": "/home/worker",
    "LANG": "C.UTF-8",
    "DATABASE_URL": "postgres://vsm:hunter2@db/vsm",
    "SECRET_TOKEN": "sk-do-not-leak",
    "AGENT_MODE": "careful",
}

CODEX_EVENTS: list[dict[str, Any]] = [
    {"type": "thread.started", "thread_id": "0199a213-81c0-7800-8aa1-bbab2a035a53"},
    {"type": "turn.started"},
    {"type": "item.completed", "item": {"id": "item_0", "type": "reasoning", "text": "Plan"}},
    {
        "type": "item.completed",
        "item": {
            "id": "item_1",
            "type": "file_change",
            "status": "completed",
            "changes": [
                {"path": "src/limits.py", "kind": "update"},
                {"path": "tests/test_limits.py", "kind": "add"},
            ],
        },
    },
    {
        "type": "item.completed",
        "item": {"id": "item_2", "type": "command_execution", "command": "pytest -q"},
    },
    {"type": "item.completed", "item": {"id": "item_3", "type": "agent_message", "text": "Draft"}},
    {
        "type": "item.completed",
        "item": {"id": "item_4", "type": "agent_message", "text": "Validated limits; 2 files."},
    },
    {
        "type": "turn.completed",
        "usage": {
            "input_tokens": 24763,
            "cached_input_tokens": 24448,
            "output_tokens": 122,
            "reasoning_output_tokens": 64,
        },
    },
]


def python_script(tmp_path: Path, name: str, body: str) -> Path:
    """An executable Python file standing in for an agent CLI.

    Its interpreter is the system's Python, which the sandbox shows (the project's venv it
    does not).
    """
    path = tmp_path / name
    path.write_text(f"#!{SANDBOX_PYTHON}\n{textwrap.dedent(body)}")
    path.chmod(0o755)
    return path


def command_provider(tmp_path: Path, environ=None, **options: str):
    node = ViableNode(
        name="coder",
        model=ModelSpec(provider="command"),
        metadata={f"provider.command.{key}": value for key, value in options.items()},
    )
    return provider_for(
        node, environ=WORKER_ENVIRON if environ is None else environ, recordings_dir=tmp_path
    )


def make_request(model: str = "unbound") -> ModelRequest:
    return ModelRequest(
        model=ModelSpec(provider="command", model=model),
        instructions="You are an operational leaf.",
        input='{"title": "Validate limits"}',
        metadata={"node_id": "coder", "node_name": "coder", "task_id": "task-42"},
    )


def argv_of(script: Path) -> str:
    return json.dumps([str(script)])


def test_the_agent_reads_the_prompt_on_stdin_inside_a_fresh_workspace(tmp_path):
    agent = python_script(
        tmp_path,
        "agent.py",
        """
        import pathlib, sys
        pathlib.Path("received.txt").write_text(sys.stdin.read())
        print("done in", pathlib.Path.cwd())
        """,
    )
    workspace = tmp_path / "workspaces" / "task-42"

    response = command_provider(tmp_path, argv=argv_of(agent)).complete(
        make_request(), workspace=workspace
    )

    assert (workspace / "received.txt").read_text() == (
        "You are an operational leaf.\n\n--- TASK INPUT ---\n"
        '{"title": "Validate limits"}\n\n--- HARNESS METADATA ---\n'
        "node_id: coder\nnode_name: coder\ntask_id: task-42\n"
    )
    assert response.output_text == f"done in {workspace.resolve()}"
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    assert response.raw is not None
    assert response.raw["exit_status"] == 0


def test_the_agent_gets_no_secrets_only_the_base_and_named_variables(tmp_path):
    agent = python_script(
        tmp_path,
        "env_agent.py",
        """
        import json, os
        print(json.dumps(dict(os.environ)))
        """,
    )

    response = command_provider(tmp_path, argv=argv_of(agent), env="AGENT_MODE,NOT_SET").complete(
        make_request(), workspace=tmp_path / "ws"
    )
    seen = json.loads(response.output_text)

    assert seen["AGENT_MODE"] == "careful"
    assert seen["HOME"] == str((tmp_path / "ws").resolve())
    assert seen["LANG"] == "C.UTF-8"
    assert "SECRET_TOKEN" not in seen
    assert "DATABASE_URL" not in seen
    # Python may add LC_CTYPE while coercing the locale, and bubblewrap sets PWD (the
    # workspace); nothing else may appear.
    assert set(seen) - {"LC_CTYPE", "PWD"} <= {"PATH", "HOME", "LANG", "AGENT_MODE"}


def test_codex_jsonl_events_give_the_final_message_usage_and_touched_files(tmp_path):
    lines = [json.dumps(event) for event in CODEX_EVENTS[:3]]
    lines.append("Reading prompt from stdin...")  # not JSON: ignored
    lines += [json.dumps(event) for event in CODEX_EVENTS[3:]]
    agent = python_script(
        tmp_path,
        "codex_like.py",
        f"""
        import sys
        sys.stdin.read()
        print({json.dumps(chr(10).join(lines))})
        """,
    )

    response = command_provider(tmp_path, argv=argv_of(agent), jsonl="true").complete(
        make_request(), workspace=tmp_path / "ws"
    )

    assert response.output_text == "Validated limits; 2 files."
    assert response.usage == Usage(input_tokens=24763, output_tokens=122)
    assert response.files_touched == ["src/limits.py", "tests/test_limits.py"]
    assert response.artifacts == [CODEX_EVENTS[3]["item"]]
    assert response.raw is not None
    assert response.raw["event_count"] == len(CODEX_EVENTS)
    assert response.raw["usage"]["cached_input_tokens"] == 24448
    assert response.raw["turn_failed"] is False


def test_a_failed_codex_turn_is_a_request_error_with_its_message(tmp_path):
    events = [
        {"type": "turn.started"},
        {"type": "turn.failed", "error": {"message": "stream disconnected before completion"}},
    ]
    agent = python_script(
        tmp_path,
        "failing_turn.py",
        f"""
        print({json.dumps(chr(10).join(json.dumps(event) for event in events))})
        """,
    )

    with pytest.raises(ProviderError) as caught:
        command_provider(tmp_path, argv=argv_of(agent), jsonl="true").complete(
            make_request(), workspace=tmp_path / "ws"
        )

    assert caught.value.kind == "request"
    assert "status=0" in str(caught.value)
    assert "stream disconnected before completion" in str(caught.value)


def test_a_non_zero_exit_reports_status_message_and_stderr_tail(tmp_path):
    agent = python_script(
        tmp_path,
        "crashing.py",
        """
        import sys
        print("half-way there")
        print("Traceback: boom: fatal error in agent", file=sys.stderr)
        sys.exit(3)
        """,
    )

    with pytest.raises(ProviderError) as caught:
        command_provider(tmp_path, argv=argv_of(agent)).complete(
            make_request(), workspace=tmp_path / "ws"
        )

    message = str(caught.value)
    assert caught.value.kind == "request"
    assert "status=3" in message
    assert "message=half-way there" in message
    assert "boom: fatal error in agent" in message


def test_a_timeout_kills_the_agent_and_everything_it_started(tmp_path):
    # The helper's pid inside the sandbox means nothing outside: it is found by its marker.
    marker = f"30.{uuid.uuid4().int % 10**9}"
    agent = python_script(
        tmp_path,
        "hanging.py",
        f"""
        import pathlib, subprocess, time
        subprocess.Popen(["sleep", "{marker}"])
        pathlib.Path("helper.started").touch()
        time.sleep(30)
        """,
    )
    workspace = tmp_path / "ws"

    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        command_provider(tmp_path, argv=argv_of(agent), timeout_seconds="1").complete(
            make_request(), workspace=workspace
        )

    assert caught.value.kind == "timeout"
    assert "timed out after 1s" in str(caught.value)
    assert time.monotonic() - started < 5
    assert (workspace / "helper.started").exists()
    assert processes_running(marker) == []


def test_the_codex_preset_runs_codex_exec_with_the_reference_arguments(tmp_path):
    fake_codex = python_script(
        tmp_path,
        "codex",
        f"""
        import json, pathlib, sys
        pathlib.Path("argv.json").write_text(json.dumps(sys.argv[1:]))
        sys.stdin.read()
        print({json.dumps(chr(10).join(json.dumps(event) for event in CODEX_EVENTS))})
        """,
    )
    workspace = tmp_path / "ws"

    response = command_provider(tmp_path, preset="codex", binary=str(fake_codex)).complete(
        make_request(model="gpt-5.5-codex"), workspace=workspace
    )

    assert json.loads((workspace / "argv.json").read_text()) == [
        "exec",
        "--cd",
        str(workspace.resolve()),
        "--sandbox",
        "workspace-write",
        "-c",
        'approval_policy="never"',
        "--color",
        "never",
        "--ephemeral",
        "--json",
        "--skip-git-repo-check",
        "--model",
        "gpt-5.5-codex",
        "-",
    ]
    assert response.output_text == "Validated limits; 2 files."


def test_the_codex_preset_leaves_the_model_to_codex_when_unbound_and_inside_git(tmp_path):
    fake_codex = python_script(
        tmp_path,
        "codex",
        """
        import json, pathlib, sys
        pathlib.Path("argv.json").write_text(json.dumps(sys.argv[1:]))
        print(json.dumps({"type": "item.completed",
                          "item": {"type": "agent_message", "text": "ok"}}))
        """,
    )
    repository = tmp_path / "repo"
    (repository / ".git").mkdir(parents=True)
    workspace = repository / "ws"

    command_provider(tmp_path, preset="codex", binary=str(fake_codex)).complete(
        make_request(), workspace=workspace
    )
    argv = json.loads((workspace / "argv.json").read_text())

    assert "--model" not in argv
    assert "--skip-git-repo-check" not in argv


def test_the_claude_preset_reads_the_json_result(tmp_path):
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "Refactored the parser.",
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 300,
            "cache_read_input_tokens": 1000,
            "output_tokens": 45,
        },
    }
    fake_claude = python_script(
        tmp_path,
        "claude",
        f"""
        import json, pathlib, sys
        pathlib.Path("argv.json").write_text(json.dumps(sys.argv[1:]))
        print(json.dumps({result!r}))
        """,
    )
    workspace = tmp_path / "ws"

    response = command_provider(tmp_path, preset="claude", binary=str(fake_claude)).complete(
        make_request(), workspace=workspace
    )

    assert json.loads((workspace / "argv.json").read_text()) == ["-p", "--output-format", "json"]
    assert response.output_text == "Refactored the parser."
    assert response.usage == Usage(input_tokens=1312, output_tokens=45)


def test_a_missing_program_is_a_configuration_error(tmp_path):
    provider = command_provider(tmp_path, argv='["/nonexistent/agent-cli"]')

    with pytest.raises(ProviderError) as caught:
        provider.complete(make_request(), workspace=tmp_path / "ws")

    assert caught.value.kind == "missing_config"
    assert "/nonexistent/agent-cli" in str(caught.value)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "provider.command.argv"),
        ({"argv": "python agent.py"}, "provider.command.argv"),
        ({"argv": "[]"}, "provider.command.argv"),
        ({"argv": '["python", 3]'}, "provider.command.argv"),
        ({"preset": "aider"}, "provider.command.preset"),
        ({"argv": '["a"]', "preset": "codex"}, "provider.command.argv"),
        ({"argv": '["a"]', "timeout_seconds": "0"}, "provider.command.timeout_seconds"),
        ({"argv": '["a"]', "jsonl": "perhaps"}, "provider.command.jsonl"),
    ],
)
def test_invalid_options_name_the_key(tmp_path, options, key):
    with pytest.raises(ProviderError) as caught:
        command_provider(tmp_path, **options)

    assert caught.value.kind == "missing_config"
    assert key in str(caught.value)

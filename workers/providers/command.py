"""The command provider: any agent CLI or script, run in the task's workspace.

The prompt goes to the child's stdin (docs/rules/leaf.md, "Providers"). The child runs inside
the sandbox (``workers.providers.sandbox``): only its workspace writable, a private /tmp, its
own PID namespace, no network unless the node's ``sandbox.network`` is ``on``, and only PATH,
LANG, HOME (= the workspace) and the variables the node names in ``provider.command.env``:
secrets the worker holds (database URL, broker password, other API keys) never reach an agent
unless a node asks for them by name. Without bubblewrap a command node is refused, unless
the admin allowed unsandboxed runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

from workers.providers.agent_output import (
    AgentTranscript,
    parse_claude_json,
    parse_codex_jsonl,
    plain_transcript,
)
from workers.providers.base import (
    ModelRequest,
    ModelResponse,
    ProviderError,
    Usage,
    rough_token_estimate,
)
from workers.providers.options import ProviderOptions
from workers.providers.process import ProcessRun, tail
from workers.providers.sandbox import (
    SandboxError,
    SandboxHost,
    SandboxUnavailable,
    agent_environment,
    run_sandboxed,
)

OutputFormat = Literal["text", "codex-jsonl", "claude-json"]
GitCheck = Literal["auto", "true", "false"]

OPTIONS = ("argv", "preset", "binary", "timeout_seconds", "env", "jsonl", "skip_git_repo_check")
PRESETS = ("codex", "claude")
DEFAULT_TIMEOUT_SECONDS = 600.0
UNBOUND_MODEL = "unbound"
ERROR_STDERR_CHARS = 2000
RAW_STDERR_CHARS = 4000


def render_agent_prompt(request: ModelRequest) -> str:
    """Instructions, the task input and the harness metadata as one stdin document."""
    prompt = f"{request.instructions}\n\n--- TASK INPUT ---\n{request.input}"
    if request.metadata:
        lines = "".join(f"{key}: {value}\n" for key, value in sorted(request.metadata.items()))
        prompt += f"\n\n--- HARNESS METADATA ---\n{lines}"
    return prompt


def bound_model(request: ModelRequest) -> str | None:
    model = request.model.model.strip()
    return None if not model or model == UNBOUND_MODEL else model


def codex_argv(
    *, binary: str, workspace: Path, model: str | None, skip_git_repo_check: bool
) -> list[str]:
    # Approval goes through ``-c``: current ``codex exec`` rejects ``--ask-for-approval``
    # (openai/codex#13614), while the config override works on old and new releases.
    argv = [
        binary,
        "exec",
        "--cd",
        str(workspace),
        "--sandbox",
        "workspace-write",
        "-c",
        'approval_policy="never"',
        "--color",
        "never",
        "--ephemeral",
        "--json",
    ]
    if skip_git_repo_check:
        argv.append("--skip-git-repo-check")
    if model:
        argv += ["--model", model]
    return [*argv, "-"]


def claude_argv(*, binary: str, model: str | None) -> list[str]:
    argv = [binary, "-p", "--output-format", "json"]
    if model:
        argv += ["--model", model]
    return argv


class CommandProvider:
    def __init__(
        self,
        *,
        environ: Mapping[str, str],
        argv: list[str] | None = None,
        preset: str | None = None,
        binary: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        env_names: list[str] | None = None,
        output_format: OutputFormat | None = None,
        skip_git_repo_check: GitCheck = "auto",
        sandbox: SandboxHost | None = None,
        network: bool = False,
    ) -> None:
        if (argv is None) == (preset is None):
            raise ValueError("CommandProvider needs exactly one of argv or preset")
        if preset is not None and preset not in PRESETS:
            raise ValueError(f"unknown command preset {preset!r}; expected one of {PRESETS}")
        self.environ = dict(environ)
        self.argv = argv
        self.preset = preset
        self.binary = binary or preset or ""
        self.timeout_seconds = timeout_seconds
        self.env_names = env_names or []
        self.output_format: OutputFormat = output_format or _default_format(preset)
        self.skip_git_repo_check = skip_git_repo_check
        self.sandbox = sandbox or SandboxHost()
        self.network = network

    @classmethod
    def from_options(
        cls,
        options: ProviderOptions,
        *,
        environ: Mapping[str, str],
        sandbox: SandboxHost | None = None,
        network: bool = False,
    ) -> CommandProvider:
        options.require_known(OPTIONS)
        preset = options.choice("preset", PRESETS, "") if options.has("preset") else None
        argv = options.json_string_list("argv")
        if argv is not None and preset is not None:
            raise options.invalid("argv", f"set either {options.key('argv')} or the preset")
        if argv is None and preset is None:
            raise ProviderError(
                "missing_config",
                f"the command provider needs {options.key('argv')} (a JSON list of strings) "
                f"or {options.key('preset')} ({', '.join(PRESETS)})",
            )
        if options.has("binary") and preset is None:
            raise options.invalid("binary", f"only used with {options.key('preset')}")
        output_format: OutputFormat | None = None
        if options.has("jsonl"):
            output_format = "codex-jsonl" if options.boolean("jsonl", False) else "text"
        git_check = options.choice("skip_git_repo_check", ("auto", "true", "false"), "auto")
        return cls(
            environ=environ,
            argv=argv,
            preset=preset,
            binary=options.optional_text("binary"),
            timeout_seconds=options.number("timeout_seconds", DEFAULT_TIMEOUT_SECONDS, minimum=0.0),
            env_names=options.comma_list("env"),
            output_format=output_format,
            skip_git_repo_check=cast(GitCheck, git_check),
            sandbox=sandbox,
            network=network,
        )

    def command_for(self, request: ModelRequest, workspace: Path) -> list[str]:
        if self.preset == "codex":
            return codex_argv(
                binary=self.binary,
                workspace=workspace,
                model=bound_model(request),
                skip_git_repo_check=self._skip_git_repo_check(workspace),
            )
        if self.preset == "claude":
            return claude_argv(binary=self.binary, model=bound_model(request))
        assert self.argv is not None
        return list(self.argv)

    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        workspace = workspace.resolve()
        workspace.mkdir(parents=True, exist_ok=True)
        argv = self.command_for(request, workspace)
        prompt = render_agent_prompt(request)
        label = f"command {argv[0]!r}"
        try:
            run = run_sandboxed(
                argv,
                host=self.sandbox,
                workspace=workspace,
                env=agent_environment(self.environ, self.env_names, workspace=workspace),
                network=self.network,
                stdin=prompt,
                timeout_seconds=self.timeout_seconds,
            )
        except SandboxUnavailable as error:
            raise ProviderError("missing_config", f"refused to run {label}: {error}") from error
        except SandboxError as error:
            raise ProviderError("request", f"refused to run {label}: {error}") from error
        except (FileNotFoundError, PermissionError) as error:
            raise ProviderError(
                "missing_config",
                f"cannot start {label}: {error.strerror or error}; "
                "check provider.command.argv / provider.command.binary and PATH",
            ) from error
        except OSError as error:
            raise ProviderError("request", f"cannot start {label}: {error}") from error

        if run.timed_out:
            raise ProviderError(
                "timeout",
                f"{label} timed out after {self.timeout_seconds:g}s and its sandbox was "
                f"killed with everything in it; stderr_tail={tail(run.stderr, ERROR_STDERR_CHARS)}",
            )
        transcript = self._transcript(run.stdout)
        if run.returncode != 0 or transcript.turn_failed:
            raise ProviderError(
                "request",
                f"{label} failed; status={run.returncode}; "
                f"message={transcript.final_message or 'no final message'}; "
                f"stderr_tail={tail(run.stderr, ERROR_STDERR_CHARS)}",
            )
        return self._response(run, transcript, prompt, argv)

    def _transcript(self, stdout: str) -> AgentTranscript:
        if self.output_format == "codex-jsonl":
            return parse_codex_jsonl(stdout)
        if self.output_format == "claude-json":
            return parse_claude_json(stdout)
        return plain_transcript(stdout)

    def _response(
        self, run: ProcessRun, transcript: AgentTranscript, prompt: str, argv: list[str]
    ) -> ModelResponse:
        final = transcript.final_message
        output_text = final if final and final.strip() else run.stdout
        usage = Usage(
            input_tokens=transcript.input_tokens
            if transcript.input_tokens is not None
            else rough_token_estimate(prompt),
            output_tokens=transcript.output_tokens
            if transcript.output_tokens is not None
            else rough_token_estimate(output_text),
        )
        raw = {
            "provider": "command",
            "preset": self.preset,
            "argv": argv,
            "exit_status": run.returncode,
            "stderr_tail": tail(run.stderr, RAW_STDERR_CHARS),
            "json_events": self.output_format != "text",
            "output_format": self.output_format,
            "event_count": transcript.event_count,
            "turn_failed": transcript.turn_failed,
            "usage": transcript.usage_json(),
            "files_touched": transcript.files_touched,
            "artifacts": transcript.artifacts,
            "duration_ms": run.duration_ms,
        }
        return ModelResponse(
            output_text=output_text,
            usage=usage,
            raw=raw,
            files_touched=list(transcript.files_touched),
            artifacts=list(transcript.artifacts),
        )

    def _skip_git_repo_check(self, workspace: Path) -> bool:
        if self.skip_git_repo_check == "auto":
            # Codex refuses to write outside a git work tree unless told; a fresh per-task
            # workspace usually is not one.
            return not any((path / ".git").exists() for path in (workspace, *workspace.parents))
        return self.skip_git_repo_check == "true"


def _default_format(preset: str | None) -> OutputFormat:
    if preset == "codex":
        return "codex-jsonl"
    if preset == "claude":
        return "claude-json"
    return "text"

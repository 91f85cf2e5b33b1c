"""Model providers: how a System 1 leaf gets its work done (docs/rules/leaf.md). No Django here.

``provider_for(node, environ=..., recordings_dir=..., sandbox=...)`` picks the provider named by
``node.model.provider`` and configures it from the node's metadata keys
``provider.<name>.<option>`` (metadata is str → str; blank values count as unset; an unknown
option or an unparsable value is ``ProviderError("missing_config")`` naming the key).

``echo`` — answers with its own prompt (docs/rules/leaf.md, "Providers").
    provider.echo.prefix              first word of the answer (default ``echo``)

``scripted`` — deterministic outcomes for demos, tests and evolution runs.
    provider.scripted.outcome         ``succeed`` (default) or ``fail``
    provider.scripted.success_rate    0..1, instead of outcome; decided by a hash of
                                      (seed, task id), so independent of order and redelivery
    provider.scripted.seed            any text (default empty)
    provider.scripted.latency_ms      sleep before answering (default 0)
    provider.scripted.input_tokens    reported usage (default: estimates)
    provider.scripted.output_tokens
    provider.scripted.output          the answer text
    provider.scripted.files_touched   comma list of relative paths, also written into the
                                      workspace so acceptance checks can see them
    provider.scripted.error_message   the failure message
    provider.scripted.peer_kind       a leaf kind (e.g. ``reviewing``); with the next option,
    provider.scripted.success_rate_with_peer
                                      the rate when a sibling leaf of that kind works beside
                                      the node in the genome the leaf runs under

``command`` — any agent CLI or script, prompt on stdin, cwd = the task workspace, inside
the sandbox (``workers.providers.sandbox``; network per the node's ``sandbox.network``).
    provider.command.argv             JSON list of strings, e.g. ["python", "agent.py"]
    provider.command.preset           ``codex`` or ``claude`` (instead of argv)
    provider.command.binary           the preset's executable (default ``codex``/``claude``)
    provider.command.timeout_seconds  default 600; on expiry the sandbox is killed
    provider.command.env              comma list of variable NAMES passed through; the child
                                      otherwise gets only PATH, LANG and HOME (= workspace)
    provider.command.jsonl            ``true`` to read Codex JSONL events (on for ``codex``)
    provider.command.skip_git_repo_check
                                      codex only: ``auto`` (default: when the workspace is not
                                      in a git work tree), ``true`` or ``false``

``openai`` — any OpenAI-compatible endpoint, Responses API, official client (imported only
when a node uses it: ``workers.providers.openai_responses.OpenAIResponsesProvider``).
    provider.openai.base_url          default $OPENAI_BASE_URL, else https://api.openai.com/v1
    provider.openai.api_key_env       variable holding the key (default OPENAI_API_KEY)
    provider.openai.default_model     used when the node's model is unbound (default gpt-5.5)
    provider.openai.timeout_seconds   default 600
    provider.openai.max_retries       client retries of 429/5xx/connection errors (default 2)

``replay`` — recorded request/response pairs, one JSONL file per node in ``recordings_dir``.
    provider.replay.mode              ``replay`` (default) or ``record``
    provider.replay.wrapped           record mode: the provider to call and record
    provider.replay.file              file name in recordings_dir (default ``<node id>.jsonl``)
"""

from workers.providers.base import (
    PROVIDER_ERROR_KINDS,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ProviderError,
    ProviderErrorKind,
    Usage,
    rough_token_estimate,
)
from workers.providers.command import CommandProvider, render_agent_prompt
from workers.providers.echo import EchoProvider
from workers.providers.registry import PROVIDER_NAMES, provider_for
from workers.providers.replay import ReplayProvider, replay_key
from workers.providers.scripted import ScriptedProvider, scripted_roll

__all__ = [
    "PROVIDER_ERROR_KINDS",
    "PROVIDER_NAMES",
    "CommandProvider",
    "EchoProvider",
    "ModelProvider",
    "ModelRequest",
    "ModelResponse",
    "ProviderError",
    "ProviderErrorKind",
    "ReplayProvider",
    "ScriptedProvider",
    "Usage",
    "provider_for",
    "render_agent_prompt",
    "replay_key",
    "rough_token_estimate",
    "scripted_roll",
]

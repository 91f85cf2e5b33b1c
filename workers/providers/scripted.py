"""The scripted provider: deterministic, configurable outcomes for demos, tests and evolution.

Whether a task succeeds depends only on the node's options and the task id, never on call
order or on how often the broker redelivers the task: with ``success_rate`` the outcome is
decided by a hash of ``(seed, task_id)``. That makes fitness comparisons between genomes
reproducible and lets crash tests redeliver a task and get the same answer.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path, PurePosixPath

from workers.providers.base import (
    ModelRequest,
    ModelResponse,
    ProviderError,
    Usage,
    rough_token_estimate,
)
from workers.providers.options import ProviderOptions

OPTIONS = (
    "outcome",
    "success_rate",
    "seed",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "output",
    "files_touched",
    "error_message",
    "peer_kind",
    "success_rate_with_peer",
)


def scripted_roll(seed: str, task_id: str) -> float:
    """A number in [0, 1) fixed by the seed and the task id."""
    digest = hashlib.sha256(f"{seed}\x00{task_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class ScriptedProvider:
    def __init__(
        self,
        *,
        success_rate: float = 1.0,
        seed: str = "",
        latency_ms: int = 0,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        output: str | None = None,
        files_touched: list[str] | None = None,
        error_message: str | None = None,
        peer_kind: str | None = None,
        success_rate_with_peer: float | None = None,
    ) -> None:
        self.success_rate = success_rate
        self.peer_kind = peer_kind
        self.success_rate_with_peer = success_rate_with_peer
        self.seed = seed
        self.latency_ms = latency_ms
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.output = output
        self.files_touched = files_touched or []
        self.error_message = error_message

    @classmethod
    def from_options(cls, options: ProviderOptions) -> ScriptedProvider:
        options.require_known(OPTIONS)
        if options.has("outcome") and options.has("success_rate"):
            raise options.invalid(
                "outcome", f"set either {options.key('outcome')} or {options.key('success_rate')}"
            )
        if options.has("success_rate"):
            success_rate = options.number("success_rate", 1.0, minimum=0.0, maximum=1.0)
        else:
            outcome = options.choice("outcome", ("succeed", "fail"), "succeed")
            success_rate = 1.0 if outcome == "succeed" else 0.0
        files_touched = options.comma_list("files_touched")
        for path in files_touched:
            if not _is_inside_workspace(path):
                raise options.invalid(
                    "files_touched", f"{path!r} must be a relative path inside the workspace"
                )
        return cls(
            success_rate=success_rate,
            seed=options.text("seed", ""),
            latency_ms=options.integer("latency_ms", 0),
            input_tokens=options.optional_integer("input_tokens"),
            output_tokens=options.optional_integer("output_tokens"),
            output=options.optional_text("output"),
            files_touched=files_touched,
            error_message=options.optional_text("error_message"),
            peer_kind=options.optional_text("peer_kind"),
            success_rate_with_peer=options.number(
                "success_rate_with_peer", success_rate, minimum=0.0, maximum=1.0
            )
            if options.has("success_rate_with_peer")
            else None,
        )

    def rate_for(self, request: ModelRequest) -> float:
        """The success rate for this request: ``success_rate_with_peer`` when a sibling leaf
        of kind ``peer_kind`` works beside the node (in the genome the leaf runs under),
        else ``success_rate``. A scripted world in which structure matters: a reviewer
        beside a coder can make the coder's work succeed more often."""
        if self.peer_kind and self.success_rate_with_peer is not None:
            peers = request.metadata.get("peer_leaf_kinds", "").split(",")
            if self.peer_kind in peers:
                return self.success_rate_with_peer
        return self.success_rate

    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        task_id = request.metadata.get("task_id", "")
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        roll = scripted_roll(self.seed, task_id)
        rate = self.rate_for(request)
        if roll >= rate:
            message = self.error_message or (
                f"scripted failure for task {task_id} (success rate {rate:g}, seed {self.seed!r})"
            )
            raise ProviderError("request", message, usage=self._usage(request, message))

        output_text = self.output or (
            f"scripted: {request.metadata.get('node_name', 'node')} completed task {task_id}."
        )
        self._write_files(workspace, task_id)
        usage = self._usage(request, output_text)
        return ModelResponse(
            output_text=output_text,
            usage=usage,
            raw={
                "provider": "scripted",
                "success_rate": rate,
                "seed": self.seed,
                "roll": roll,
                "files_touched": list(self.files_touched),
            },
            files_touched=list(self.files_touched),
        )

    def _usage(self, request: ModelRequest, answer: str) -> Usage:
        """What the attempt spent, success or failure alike."""
        return Usage(
            input_tokens=self.input_tokens
            if self.input_tokens is not None
            else rough_token_estimate(request.instructions) + rough_token_estimate(request.input),
            output_tokens=self.output_tokens
            if self.output_tokens is not None
            else rough_token_estimate(answer),
        )

    def _write_files(self, workspace: Path, task_id: str) -> None:
        # Real files, so acceptance verifiers (``test -f ...``) see what the agent "changed".
        for relative in self.files_touched:
            path = workspace / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"written by the scripted provider for task {task_id}\n")


def _is_inside_workspace(path: str) -> bool:
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and pure != PurePosixPath(".")

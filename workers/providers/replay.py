"""The replay provider: answers from recorded request/response pairs.

``record`` mode wraps a real provider, passes each request through and appends the pair to
the node's recordings file; ``replay`` mode answers from that file and never calls anything,
so demos, tests and evolution runs can re-run real agent behaviour offline and for free.

A recording is found by the sha256 of a canonical JSON of the request. Things that differ
between two runs of the same work must stay out of that key, or nothing would ever replay:

* the ``task_id`` metadata and the task packet's own ``id`` (fresh for every run);
* every UUID anywhere in the text (directive, parent, dependency, envelope, correlation and
  trial ids all are ``uuid4``), replaced by ``<id>``, including ids quoted in goals such as
  "Verify the implementation for directive task <id>";
* RFC 3339 timestamps, replaced by ``<timestamp>``.

The model spec, the instructions (the node's prompt genome), the rest of the task and the
other metadata stay in, so a changed prompt or task is a miss, not a stale answer. Side
effects in the workspace are not replayed; ``files_touched`` and artifacts are.

Errors other than ``missing_config`` are recorded too and replayed as the same error, so a
replayed run fails where the recorded one failed.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast

from ledger.chain import canonical_json
from workers.providers.base import (
    PROVIDER_ERROR_KINDS,
    ModelProvider,
    ModelRequest,
    ModelResponse,
    ProviderError,
    ProviderErrorKind,
    Usage,
)
from workers.providers.options import ProviderOptions

ReplayMode = Literal["replay", "record"]
OPTIONS = ("mode", "wrapped", "file")
MODES = ("replay", "record")
VOLATILE_METADATA = frozenset({"task_id"})
UUID_PATTERN = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
TIMESTAMP_PATTERN = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def _normalize_text(text: str) -> str:
    return TIMESTAMP_PATTERN.sub("<timestamp>", UUID_PATTERN.sub("<id>", text))


def _normalize_input(text: str) -> str:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return _normalize_text(text)
    if isinstance(parsed, dict):
        parsed.pop("id", None)  # the task packet's id: new on every run
    return _normalize_text(json.dumps(parsed, sort_keys=True, ensure_ascii=False))


def replay_key(request: ModelRequest) -> str:
    """The recording key of a request: stable across runs of the same task on the same node."""
    canonical = {
        "model": dataclasses.asdict(request.model),
        "instructions": _normalize_text(request.instructions),
        "input": _normalize_input(request.input),
        "metadata": {
            key: _normalize_text(value)
            for key, value in sorted(request.metadata.items())
            if key not in VOLATILE_METADATA
        },
    }
    encoded = canonical_json(canonical)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


class ReplayProvider:
    def __init__(
        self,
        *,
        recordings_file: Path,
        mode: ReplayMode = "replay",
        wrapped: ModelProvider | None = None,
        wrapped_name: str | None = None,
    ) -> None:
        if mode == "record" and wrapped is None:
            raise ValueError("record mode needs a provider to wrap")
        self.recordings_file = recordings_file
        self.mode = mode
        self.wrapped = wrapped
        self.wrapped_name = wrapped_name

    @classmethod
    def from_options(
        cls,
        options: ProviderOptions,
        *,
        recordings_dir: Path,
        node_id: str,
        wrappable: Sequence[str],
        build_wrapped: Callable[[str], ModelProvider],
    ) -> ReplayProvider:
        options.require_known(OPTIONS)
        mode = cast(ReplayMode, options.choice("mode", MODES, "replay"))
        file_name = options.text("file", recordings_file_name(node_id)).strip()
        if "/" in file_name or file_name in (".", ".."):
            raise options.invalid("file", f"expected a file name inside {recordings_dir}")
        wrapped_name = (options.optional_text("wrapped") or "").strip() or None
        wrapped: ModelProvider | None = None
        if mode == "record":
            if wrapped_name is None or wrapped_name not in wrappable:
                raise options.invalid("wrapped", f"record mode wraps one of {', '.join(wrappable)}")
            wrapped = build_wrapped(wrapped_name)
        return cls(
            recordings_file=recordings_dir / file_name,
            mode=mode,
            wrapped=wrapped,
            wrapped_name=wrapped_name,
        )

    def complete(self, request: ModelRequest, *, workspace: Path) -> ModelResponse:
        key = replay_key(request)
        if self.mode == "record":
            return self._record(key, request, workspace)
        entry = self._lookup(key)
        if entry is None:
            raise ProviderError(
                "missing_config",
                f"no recording for replay key {key} in {self.recordings_file}; record one with "
                "node metadata provider.replay.mode=record and provider.replay.wrapped=<provider>",
            )
        error = entry.get("error")
        if isinstance(error, dict):
            kind = error.get("kind")
            raise ProviderError(
                cast(ProviderErrorKind, kind) if kind in PROVIDER_ERROR_KINDS else "request",
                f"{error.get('message', '')} (replayed from {self.recordings_file})",
            )
        return _response_from_json(entry["response"])

    def _record(self, key: str, request: ModelRequest, workspace: Path) -> ModelResponse:
        assert self.wrapped is not None
        entry: dict[str, Any] = {
            "key": key,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "wrapped": self.wrapped_name,
            "request": dataclasses.asdict(request),
        }
        try:
            response = self.wrapped.complete(request, workspace=workspace)
        except ProviderError as error:
            # A configuration problem says nothing about the model; don't replay it later.
            if error.kind != "missing_config":
                entry["error"] = {"kind": error.kind, "message": error.message}
                append_jsonl(self.recordings_file, entry)
            raise
        entry["response"] = dataclasses.asdict(response)
        append_jsonl(self.recordings_file, entry)
        return response

    def _lookup(self, key: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = None
        for entry in read_jsonl(self.recordings_file):
            if entry.get("key") == key and ("response" in entry or "error" in entry):
                found = entry  # the latest recording wins
        return found


def _response_from_json(data: dict[str, Any]) -> ModelResponse:
    usage = data.get("usage")
    return ModelResponse(
        output_text=data["output_text"],
        usage=Usage(**usage) if isinstance(usage, dict) else None,
        raw=data.get("raw"),
        files_touched=list(data.get("files_touched") or []),
        artifacts=list(data.get("artifacts") or []),
    )


def append_jsonl(path: Path, entry: dict[str, Any]) -> None:
    """Append one line so that concurrent writers never interleave or split lines.

    O_APPEND puts every write at the end of the file; the exclusive lock keeps a second
    process out while a long line needs more than one ``write``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)  # also releases the lock


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON object line; a torn or foreign line is skipped, not fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def recordings_file_name(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", node_id) + ".jsonl"

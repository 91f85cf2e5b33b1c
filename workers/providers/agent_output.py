"""Reading what agent CLIs print: Codex JSONL events and Claude Code's JSON result."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

FILE_ITEM_MARKERS = ("file", "patch", "change")
PATH_KEYS = frozenset({"path", "file", "filename"})


@dataclass(kw_only=True)
class AgentTranscript:
    final_message: str | None = None
    input_tokens: int | None = None
    cached_input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_output_tokens: int | None = None
    turn_failed: bool = False
    event_count: int = 0
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    files_touched: list[str] = field(default_factory=list)

    def usage_json(self) -> dict[str, int | None]:
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_output_tokens": self.reasoning_output_tokens,
        }


def plain_transcript(stdout: str) -> AgentTranscript:
    """Without structured output the whole trimmed stdout is the final message."""
    return AgentTranscript(final_message=stdout.strip())


def parse_codex_jsonl(stdout: str) -> AgentTranscript:
    """Fold ``codex exec --json`` events (docs/rules/leaf.md); non-JSON lines are ignored."""
    transcript = AgentTranscript()
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        transcript.event_count += 1
        if isinstance(event, dict):
            _apply_codex_event(transcript, event)
    transcript.files_touched = sorted(set(transcript.files_touched))
    return transcript


def _apply_codex_event(transcript: AgentTranscript, event: dict[str, Any]) -> None:
    event_type = event.get("type")
    if event_type == "turn.completed":
        usage = event.get("usage")
        if isinstance(usage, dict):
            transcript.input_tokens = _count(usage.get("input_tokens"))
            transcript.cached_input_tokens = _count(usage.get("cached_input_tokens"))
            transcript.output_tokens = _count(usage.get("output_tokens"))
            transcript.reasoning_output_tokens = _count(usage.get("reasoning_output_tokens"))
    elif event_type in ("turn.failed", "error"):
        transcript.turn_failed = True
        message = event.get("message")
        error = event.get("error")
        # Current Codex nests the reason: {"type": "turn.failed", "error": {"message": ...}}.
        if not isinstance(message, str) and isinstance(error, dict):
            message = error.get("message")
        if isinstance(message, str):
            transcript.final_message = message
    elif event_type == "item.completed":
        item = event.get("item")
        if not isinstance(item, dict):
            return
        item_type = item.get("type")
        item_type = item_type if isinstance(item_type, str) else ""
        if item_type == "agent_message":
            text = item.get("text")
            if isinstance(text, str):
                transcript.final_message = text
        elif any(marker in item_type for marker in FILE_ITEM_MARKERS):
            transcript.artifacts.append(item)
            transcript.files_touched.extend(_file_paths(item))


def _file_paths(value: Any) -> list[str]:
    """Every string under a ``path``/``file``/``filename`` key, at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            if key in PATH_KEYS and isinstance(child, str):
                found.append(child)
            found.extend(_file_paths(child))
    elif isinstance(value, list):
        for child in value:
            found.extend(_file_paths(child))
    return found


def parse_claude_json(stdout: str) -> AgentTranscript:
    """Read ``claude -p --output-format json``: one result object (an array with --verbose)."""
    result = _claude_result(stdout)
    if result is None:
        return plain_transcript(stdout)
    transcript = AgentTranscript(event_count=1)
    text = result.get("result")
    if isinstance(text, str):
        transcript.final_message = text
    subtype = result.get("subtype")
    transcript.turn_failed = result.get("is_error") is True or (
        isinstance(subtype, str) and subtype.startswith("error")
    )
    usage = result.get("usage")
    if isinstance(usage, dict):
        # Cached prompt tokens are still prompt tokens the task consumed.
        parts = [
            _count(usage.get(key))
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
        ]
        counted = [part for part in parts if part is not None]
        transcript.input_tokens = sum(counted) if counted else None
        transcript.cached_input_tokens = _count(usage.get("cache_read_input_tokens"))
        transcript.output_tokens = _count(usage.get("output_tokens"))
    return transcript


def _claude_result(stdout: str) -> dict[str, Any] | None:
    candidates: list[Any] = []
    try:
        candidates.append(json.loads(stdout))
    except json.JSONDecodeError:
        for line in reversed(stdout.splitlines()):
            try:
                candidates.append(json.loads(line))
            except json.JSONDecodeError:
                continue
            break
    for candidate in candidates:
        items = candidate if isinstance(candidate, list) else [candidate]
        for item in reversed(items):
            if isinstance(item, dict) and item.get("type") == "result":
                return item
    return None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None

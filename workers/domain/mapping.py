"""DirectiveTaskMapper: a directive becomes the root task (docs/rules/mapping.md). Pure, no Django.

The static predicates are a cheap, deterministic reading of the directive's text and metadata
(which files, languages and sensitive areas it probably touches). Routing, bargaining and trial
replay read them, so the same directive must always yield the same predicates: every list is
de-duplicated and sorted, and nothing here depends on the order of a dict.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from workers.domain.messages import DirectiveMessage, RiskClass, StaticTaskPredicates, TaskPacket

# -- metadata readers (docs/rules/README.md, "Conventions") -------------


def is_strict_true(value: str | None) -> bool:
    """The *strict* boolean reader: only ``"true"`` is true."""
    return value == "true"


def is_truthy(value: str | None) -> bool:
    """The *truthy* boolean reader: ``"true"``, ``"1"`` or ``"yes"`` in any ASCII case."""
    if value is None:
        return False
    return value in ("true", "1") or (value.isascii() and value.lower() == "yes")


def bool_text(value: bool) -> str:
    return "true" if value else "false"


# -- configuration ------------------------------------------------------------


@dataclass(kw_only=True)
class DomainKeywordHint:
    """Sets domain marker ``marker=true`` when any keyword occurs in the directive."""

    marker: str
    keywords: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class MapperConfig:
    default_requires_code_write: bool = True
    repository_files: list[str] = field(default_factory=list)
    domain_keyword_hints: list[DomainKeywordHint] = field(default_factory=list)


# Directive metadata keys copied verbatim onto the task (docs/rules/mapping.md, "Task metadata").
VERBATIM_METADATA_KEYS = (
    "required_capability",
    "target_child",
    "requires_review",
    "trial_approved",
    "task_class",
    "estimated_files_touched",
)
TASK_METADATA_PREFIX = "task.metadata."


def map_directive(
    directive: DirectiveMessage,
    *,
    config: MapperConfig | None = None,
    controller_node_id: str | None = None,
) -> TaskPacket:
    """The root task for a directive (docs/rules/mapping.md, then ``controller_node_id``)."""
    config = MapperConfig() if config is None else config
    predicates = extract_static_predicates(directive, config)
    task = TaskPacket(
        title=directive.title,
        goal=directive.body,
        directive_id=directive.id,
        target_state=directive.desired_state,
        constraints=list(directive.constraints),
        acceptance=copy.deepcopy(directive.acceptance),
        risk=directive.risk,
        static_predicates=predicates,
        scope=list(predicates.likely_files),
    )

    source = directive.metadata
    metadata: dict[str, str] = {
        "origin": directive.origin,
        "mapped_from_directive": directive.id,
    }
    requires_code_write = source.get("requires_code_write")
    metadata["requires_code_write"] = bool_text(
        config.default_requires_code_write
        if requires_code_write is None
        else is_strict_true(requires_code_write)
    )
    if predicates.likely_files:
        metadata.setdefault("estimated_files_touched", str(len(predicates.likely_files)))
    for key in VERBATIM_METADATA_KEYS:
        if key in source:
            metadata[key] = source[key]
    for key, value in sorted(source.items()):
        if key.startswith(TASK_METADATA_PREFIX):
            metadata[key.removeprefix(TASK_METADATA_PREFIX)] = value
    if directive.risk in (RiskClass.HIGH, RiskClass.CRITICAL):
        metadata["requires_parent_review"] = "true"
    if controller_node_id is not None:
        metadata["controller_node_id"] = controller_node_id
    task.metadata = dict(sorted(metadata.items()))
    return task


# -- static predicate extraction ---------------------------------------------

PATH_TOKEN_TRIM = "`'\",;:()[]{}"
KNOWN_EXTENSIONS = (
    ".rs",
    ".toml",
    ".md",
    ".json",
    ".yaml",
    ".yml",
    ".sql",
    ".ts",
    ".tsx",
    ".js",
    ".jsx",
    ".py",
    ".go",
    ".java",
    ".rb",
    ".sh",
)
CARGO_HINTS = ("cargo", "crate", "dependency", "dependencies")
LANGUAGE_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("rust", ("rust", "cargo", "crate", ".rs")),
    ("typescript", ("typescript", ".ts", ".tsx")),
    ("javascript", ("javascript", ".js", ".jsx")),
    ("python", ("python", ".py")),
    ("sql", ("sql", ".sql")),  # "sqlite" and "postgresql" match too, as in the reference
    ("markdown", ("markdown", ".md", "readme")),
    ("toml", ("toml", "cargo.toml")),
)
# Wordish tokens: runs of ASCII letters, digits, ``_``, ``-`` and ``.``.
NOT_WORDISH = re.compile(r"[^A-Za-z0-9_.\-]")
METADATA_LIST_SEPARATORS = re.compile(r"[,;|\n]")

LIST_FIELDS = ("languages", "likely_files", "modules", "dependencies", "test_targets", "tags")
FLAG_FIELDS = (
    "public_api_touched",
    "database_touched",
    "auth_touched",
    "config_touched",
    "migration_touched",
    "security_sensitive",
)
DOMAIN_MARKER_PREFIXES = (
    "domain_marker.",
    "static_predicates.domain_marker.",
    "task.static_predicates.domain_marker.",
)
RISK_BY_NAME = {risk.value.lower(): risk for risk in RiskClass}


def extract_static_predicates(
    directive: DirectiveMessage, config: MapperConfig | None = None
) -> StaticTaskPredicates:
    """Static predicates of a directive, by the ten rules of docs/rules/mapping.md."""
    config = MapperConfig() if config is None else config
    predicates = StaticTaskPredicates()
    corpus = directive_corpus(directive)
    corpus_lower = corpus.lower()

    _extend_unique(predicates.likely_files, path_like_tokens(corpus))
    words = wordish_tokens(corpus_lower)
    _extend_unique(
        predicates.likely_files,
        (f for f in config.repository_files if repository_file_matches(f, corpus_lower, words)),
    )
    if _mentions_any(corpus_lower, CARGO_HINTS):
        _extend_unique(
            predicates.likely_files,
            (f for f in config.repository_files if f == "Cargo.toml" or f.endswith("/Cargo.toml")),
        )
    _infer_languages(predicates, corpus_lower)
    # Only files found in the text get per-file rules; explicit metadata files (rule 8) do not.
    for file in list(predicates.likely_files):
        _infer_file_predicates(predicates, file)
    _infer_text_predicates(predicates, corpus_lower)
    for hint in config.domain_keyword_hints:
        # An empty keyword would match every directive: it is ignored rather than honoured.
        if any(kw and kw.lower() in corpus_lower for kw in hint.keywords):
            _set_marker(predicates, hint.marker, "true")
    _merge_metadata_predicates(predicates, directive.metadata)
    if predicates.estimated_blast_radius is None:
        predicates.estimated_blast_radius = inferred_blast_radius(predicates)
    _normalise(predicates)
    return predicates


def directive_corpus(directive: DirectiveMessage) -> str:
    """Title, body, desired state, constraints and every metadata value, one per line."""
    parts = [directive.title, directive.body]
    if directive.desired_state is not None:
        parts.append(directive.desired_state)
    parts.extend(directive.constraints)
    parts.extend(value for _, value in sorted(directive.metadata.items()))
    return "\n".join(parts)


def path_like_tokens(text: str) -> list[str]:
    """Whitespace tokens that look like paths: they contain ``/`` or end in a known extension."""
    tokens = []
    for raw in text.split():
        token = _trim_path_token(raw)
        if "/" in token or token.lower().endswith(KNOWN_EXTENSIONS):
            tokens.append(token)
    return tokens


def _trim_path_token(token: str) -> str:
    # Trim until stable, so "`docs/README.md`." and "(a.py)." lose both the quote and the dot
    # (the reference trims once and keeps the closing backtick).
    while True:
        trimmed = token.strip(PATH_TOKEN_TRIM).rstrip(".")
        if trimmed == token:
            return token
        token = trimmed


def wordish_tokens(text: str) -> frozenset[str]:
    """The distinct runs of ASCII letters, digits, ``_``, ``-`` and ``.`` in ``text``."""
    return frozenset(NOT_WORDISH.split(text))


def repository_file_matches(
    file: str, corpus_lower: str, words: frozenset[str] | None = None
) -> bool:
    """Full path anywhere, file name (≥5 chars) or stem (≥4 chars) as a wordish token.

    ``words`` is ``wordish_tokens(corpus_lower)``, passed in to split the corpus only once.
    """
    normalised = file.lower()
    if normalised in corpus_lower:
        return True
    if words is None:
        words = wordish_tokens(corpus_lower)
    file_name = normalised.rsplit("/", 1)[-1]
    if len(file_name) >= 5 and file_name in words:
        return True
    stem = file_name.split(".", 1)[0]
    return len(stem) >= 4 and stem in words


def _infer_languages(predicates: StaticTaskPredicates, corpus_lower: str) -> None:
    for language, hints in LANGUAGE_HINTS:
        if _mentions_any(corpus_lower, hints):
            _insert_unique(predicates.languages, language)


def _infer_file_predicates(predicates: StaticTaskPredicates, file: str) -> None:
    lower = file.lower()
    _infer_file_language(predicates, lower)
    if "migrations/" in lower or "/migration" in lower:
        predicates.migration_touched = True
        predicates.database_touched = True
        _set_marker(predicates, "migration", "true")
    if "auth" in lower or "security" in lower:
        predicates.auth_touched = True
        predicates.security_sensitive = True
        if "auth" in lower:
            _set_marker(predicates, "auth", "true")
        if "security" in lower:
            _set_marker(predicates, "security", "true")
    if "api" in lower or "route" in lower:
        predicates.public_api_touched = True
        _set_marker(predicates, "public_interface", "true")
    if lower.endswith(("cargo.toml", ".json", ".yaml", ".yml")):
        predicates.config_touched = True
        _set_marker(predicates, "configuration", "true")
    if "_test." in lower or ".test." in lower or "/tests/" in lower:
        _insert_unique(predicates.test_targets, file)
    _extend_unique(predicates.modules, modules_from_path(file))


def _infer_file_language(predicates: StaticTaskPredicates, lower: str) -> None:
    if lower.endswith(".rs"):
        _insert_unique(predicates.languages, "rust")
    elif lower.endswith(".toml"):
        _insert_unique(predicates.languages, "toml")
        predicates.config_touched = True
    elif lower.endswith(".md"):
        _insert_unique(predicates.languages, "markdown")
    elif lower.endswith(".sql"):
        _insert_unique(predicates.languages, "sql")
        predicates.database_touched = True
        _set_marker(predicates, "data_store", "sql")
    elif lower.endswith((".ts", ".tsx")):
        _insert_unique(predicates.languages, "typescript")
    elif lower.endswith((".js", ".jsx")):
        _insert_unique(predicates.languages, "javascript")
    elif lower.endswith(".py"):
        _insert_unique(predicates.languages, "python")


def modules_from_path(file: str) -> list[str]:
    """Every segment after a ``crates`` segment, plus the file stem when it has ≥3 chars."""
    parts = file.split("/")
    modules = [after for before, after in itertools.pairwise(parts) if before == "crates"]
    stem = parts[-1].split(".", 1)[0]
    if len(stem) >= 3:
        modules.append(stem)
    return modules


def _infer_text_predicates(predicates: StaticTaskPredicates, corpus_lower: str) -> None:
    if _mentions_any(corpus_lower, ("security", "secret", "credential", "vulnerability")):
        predicates.security_sensitive = True
        _set_marker(predicates, "security", "true")
    if _mentions_any(corpus_lower, ("public api", "endpoint", "route", "interface")):
        predicates.public_api_touched = True
    if _mentions_any(corpus_lower, ("config", "configuration", "settings")):
        predicates.config_touched = True
    if _mentions_any(corpus_lower, ("test", "tests", "verify", "validation")):
        _insert_unique(predicates.tags, "verification")
    if "cargo test" in corpus_lower:
        _insert_unique(predicates.test_targets, "cargo test")


def metadata_values(metadata: Mapping[str, str], key: str) -> list[str]:
    """Values of ``key`` under its five spellings, in spelling order (the last one wins)."""
    spellings = (
        key,
        f"task.{key}",
        f"task.metadata.{key}",
        f"static_predicates.{key}",
        f"task.static_predicates.{key}",
    )
    return [metadata[spelling] for spelling in spellings if spelling in metadata]


def split_metadata_list(value: str) -> list[str]:
    """``"a, b;c|d"`` → ``["a", "b", "c", "d"]``; empty items are dropped."""
    return [part.strip() for part in METADATA_LIST_SEPARATORS.split(value) if part.strip()]


def _merge_metadata_predicates(
    predicates: StaticTaskPredicates, metadata: Mapping[str, str]
) -> None:
    for list_field in LIST_FIELDS:
        target: list[str] = getattr(predicates, list_field)
        for value in metadata_values(metadata, list_field):
            _extend_unique(target, split_metadata_list(value))
    for value in metadata_values(metadata, "domain_markers"):
        for item in split_metadata_list(value):
            marker, separator, marker_value = item.partition("=")
            _set_marker(predicates, marker, marker_value if separator else "true")
    for key, value in sorted(metadata.items()):
        for prefix in DOMAIN_MARKER_PREFIXES:
            if key.startswith(prefix):
                _set_marker(predicates, key.removeprefix(prefix), value)
    for flag in FLAG_FIELDS:
        values = metadata_values(metadata, flag)
        # Explicit metadata can only turn a flag on, never clear one the text implied.
        if values and is_truthy(values[-1]):
            setattr(predicates, flag, True)
    radius = metadata_values(metadata, "estimated_blast_radius")
    if radius:
        predicates.estimated_blast_radius = RISK_BY_NAME.get(radius[-1].lower())


def inferred_blast_radius(predicates: StaticTaskPredicates) -> RiskClass | None:
    """High for security/auth/data, Medium for public API/config, Low for any file, else None."""
    if (
        predicates.security_sensitive
        or predicates.auth_touched
        or predicates.database_touched
        or predicates.migration_touched
    ):
        return RiskClass.HIGH
    if predicates.public_api_touched or predicates.config_touched:
        return RiskClass.MEDIUM
    if predicates.likely_files:
        return RiskClass.LOW
    return None


def _normalise(predicates: StaticTaskPredicates) -> None:
    for list_field in LIST_FIELDS:
        values: list[str] = getattr(predicates, list_field)
        setattr(predicates, list_field, sorted({value for value in values if value}))
    predicates.domain_markers = dict(sorted(predicates.domain_markers.items()))


def _mentions_any(text: str, needles: Iterable[str]) -> bool:
    return any(needle in text for needle in needles)


def _insert_unique(values: list[str], value: str) -> None:
    if value and value not in values:
        values.append(value)


def _extend_unique(values: list[str], additions: Iterable[str]) -> None:
    for value in additions:
        _insert_unique(values, value)


def _set_marker(predicates: StaticTaskPredicates, key: str, value: str) -> None:
    key, value = key.strip(), value.strip()
    if key and value:
        predicates.domain_markers[key] = value

"""Directive → root task, with static predicates read from its text (docs/rules/mapping.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workers.domain.mapping import (
    DomainKeywordHint,
    MapperConfig,
    extract_static_predicates,
    is_strict_true,
    is_truthy,
    map_directive,
)
from workers.domain.messages import (
    AcceptanceCriterion,
    DirectiveMessage,
    RiskClass,
    StaticTaskPredicates,
)

SPELLINGS = [
    "{}",
    "task.{}",
    "task.metadata.{}",
    "static_predicates.{}",
    "task.static_predicates.{}",
]
FLAGS = [
    "public_api_touched",
    "database_touched",
    "auth_touched",
    "config_touched",
    "migration_touched",
    "security_sensitive",
]


def predicates_of(
    title: str,
    body: str = "",
    *,
    metadata: dict[str, str] | None = None,
    config: MapperConfig | None = None,
) -> StaticTaskPredicates:
    directive = DirectiveMessage(title=title, body=body, metadata=metadata or {})
    return extract_static_predicates(directive, config or MapperConfig())


def files_config(*files: str) -> MapperConfig:
    return MapperConfig(repository_files=list(files))


# -- boolean readers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "strict", "truthy"),
    [
        ("true", True, True),
        ("True", False, False),
        ("1", False, True),
        ("yes", False, True),
        ("YES", False, True),
        ("Yes", False, True),
        ("on", False, False),
        ("false", False, False),
        ("", False, False),
        (" true", False, False),
        (None, False, False),
    ],
)
def test_it_reads_booleans_strictly_or_truthily(value, strict, truthy) -> None:
    assert is_strict_true(value) is strict
    assert is_truthy(value) is truthy


# -- mapping (steps 1-6) -----------------------------------------------------


def test_it_copies_the_directive_onto_the_root_task() -> None:
    acceptance = [AcceptanceCriterion(name="tests", description="pass", verifier="make test")]
    directive = DirectiveMessage(
        id="d-1",
        origin="ci",
        title="Tidy up",
        body="Make it neat",
        constraints=["no new dependencies"],
        desired_state="neat",
        risk=RiskClass.LOW,
        acceptance=acceptance,
    )

    task = map_directive(directive)

    assert task.title == "Tidy up"
    assert task.goal == "Make it neat"
    assert task.directive_id == "d-1"
    assert task.target_state == "neat"
    assert task.constraints == ["no new dependencies"]
    assert task.risk is RiskClass.LOW
    assert task.acceptance == acceptance
    assert task.acceptance is not acceptance
    assert task.parent_task_id is None and task.assigned_to is None
    assert task.metadata == {
        "mapped_from_directive": "d-1",
        "origin": "ci",
        "requires_code_write": "true",
    }


def test_it_fills_scope_and_file_count_from_the_likely_files() -> None:
    task = map_directive(DirectiveMessage(title="Fix src/api/routes.py and `docs/README.md`."))

    assert task.static_predicates.likely_files == ["docs/README.md", "src/api/routes.py"]
    assert task.scope == ["docs/README.md", "src/api/routes.py"]
    assert task.metadata["estimated_files_touched"] == "2"


def test_it_leaves_scope_empty_and_the_file_count_unset_without_likely_files() -> None:
    task = map_directive(DirectiveMessage(title="Tidy up"))

    assert task.scope == []
    assert "estimated_files_touched" not in task.metadata


@pytest.mark.parametrize(
    ("value", "default", "expected"),
    [
        (None, True, "true"),
        (None, False, "false"),
        ("true", False, "true"),
        ("false", True, "false"),
        ("yes", True, "false"),  # strict reader: anything but "true" is false
        ("1", True, "false"),
    ],
)
def test_it_reads_requires_code_write_strictly_else_takes_the_default(
    value, default, expected
) -> None:
    metadata = {} if value is None else {"requires_code_write": value}
    config = MapperConfig(default_requires_code_write=default)

    task = map_directive(DirectiveMessage(title="Tidy up", metadata=metadata), config=config)

    assert task.metadata["requires_code_write"] == expected


def test_it_copies_the_task_shape_keys_verbatim_and_nothing_else() -> None:
    metadata = {
        "required_capability": "review",
        "target_child": "reviewer",
        "requires_review": "yes",
        "trial_approved": "true",
        "task_class": "docs",
        "estimated_files_touched": "9",
        "decompose": "true",
        "unrelated": "x",
    }

    task = map_directive(DirectiveMessage(title="Edit a.py", metadata=metadata))

    for key in metadata.keys() - {"decompose", "unrelated"}:
        assert task.metadata[key] == metadata[key]
    # The directive's own count overwrites the one derived from the likely files.
    assert task.metadata["estimated_files_touched"] == "9"
    assert "decompose" not in task.metadata and "unrelated" not in task.metadata


def test_it_unwraps_task_metadata_keys_over_the_verbatim_ones() -> None:
    metadata = {
        "target_child": "coder",
        "task.metadata.target_child": "reviewer",
        "task.metadata.requires_tests": "true",
        "task.metadata.origin": "override",
    }

    task = map_directive(DirectiveMessage(title="Tidy up", origin="operator", metadata=metadata))

    assert task.metadata["target_child"] == "reviewer"
    assert task.metadata["requires_tests"] == "true"
    assert task.metadata["origin"] == "override"


@pytest.mark.parametrize(
    ("risk", "flagged"),
    [
        (RiskClass.LOW, False),
        (RiskClass.MEDIUM, False),
        (RiskClass.HIGH, True),
        (RiskClass.CRITICAL, True),
    ],
)
def test_it_asks_for_parent_review_of_high_and_critical_directives(risk, flagged) -> None:
    task = map_directive(DirectiveMessage(title="Tidy up", risk=risk))

    assert (task.metadata.get("requires_parent_review") == "true") is flagged


def test_it_stamps_the_controller_last() -> None:
    directive = DirectiveMessage(
        title="Tidy up", metadata={"task.metadata.controller_node_id": "evil"}
    )

    assert map_directive(directive).metadata["controller_node_id"] == "evil"
    task = map_directive(directive, controller_node_id="root")
    assert task.metadata["controller_node_id"] == "root"


def test_it_keeps_task_metadata_sorted_by_key() -> None:
    directive = DirectiveMessage(
        title="Edit a.py", risk=RiskClass.HIGH, metadata={"task.metadata.b": "1"}
    )

    keys = list(map_directive(directive, controller_node_id="root").metadata)

    assert keys == sorted(keys)


# -- rule 1: path-like tokens -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fix src/api/routes.py and `docs/README.md`.", ["docs/README.md", "src/api/routes.py"]),
        ("(see crates/core/src/lib.rs).", ["crates/core/src/lib.rs"]),
        ("Run 'scripts/setup.sh'...", ["scripts/setup.sh"]),
        ('Edit "config.yaml", {app.json}; [main.go]: x', ["app.json", "config.yaml", "main.go"]),
        ("Update MAIN.PY", ["MAIN.PY"]),
        ("Compare the docs/ folder", ["docs/"]),
        ("Tidy up. Then rest.", []),
        ("Edit notes.txt", []),
        ("Edit a.py, then a.py again", ["a.py"]),
    ],
)
def test_it_finds_path_like_tokens_in_the_text(text, expected) -> None:
    assert predicates_of(text).likely_files == expected


def test_it_reads_paths_from_body_desired_state_constraints_and_metadata_values() -> None:
    directive = DirectiveMessage(
        title="t",
        body="body.py",
        desired_state="state.py",
        constraints=["constraint.py"],
        metadata={"anything": "meta.py"},
    )

    predicates = extract_static_predicates(directive, MapperConfig())

    assert predicates.likely_files == ["body.py", "constraint.py", "meta.py", "state.py"]


# -- rules 2 and 3: repository files -------------------------------------------


@pytest.mark.parametrize(
    ("text", "repository_file", "matches"),
    [
        ("Look at crates/a/src/mapper.rs closely", "crates/a/src/mapper.rs", True),
        ("look at DOCS/GUIDE.MD", "docs/guide.md", True),
        ("the mapper.rs file", "crates/a/src/mapper.rs", True),
        ("refactor the runtime module", "crates/a/src/runtime.rs", True),
        ("refactor the RUNTIME module", "crates/a/src/runtime.rs", True),
        ("runtime_helpers need love", "crates/a/src/runtime.rs", False),
        ("refactor the runtime.", "crates/a/src/runtime.rs", False),  # "runtime." is one token
        ("the lib code", "src/lib.rs", False),  # stem shorter than 4
        ("the a.rs file", "x/a.rs", False),  # name shorter than 5, stem shorter than 4
        ("the main code", "src/main.rs", True),
    ],
)
def test_it_matches_repository_files_by_path_name_or_stem(text, repository_file, matches) -> None:
    predicates = predicates_of(text, config=files_config(repository_file))

    assert (repository_file in predicates.likely_files) is matches


def test_it_keeps_the_repository_spelling_of_a_matched_file() -> None:
    predicates = predicates_of("look at docs/guide.md", config=files_config("Docs/Guide.md"))

    assert "Docs/Guide.md" in predicates.likely_files


@pytest.mark.parametrize("word", ["cargo", "crate", "dependency", "dependencies"])
def test_it_adds_cargo_manifests_when_the_text_mentions_dependencies(word) -> None:
    config = files_config("Cargo.toml", "crates/a/Cargo.toml", "crates/a/NotCargo.toml", "x.rs")

    predicates = predicates_of(f"Bump the {word.upper()}", config=config)

    assert predicates.likely_files == ["Cargo.toml", "crates/a/Cargo.toml"]


def test_it_adds_no_cargo_manifest_without_a_dependency_word() -> None:
    predicates = predicates_of("Bump the version", config=files_config("Cargo.toml"))

    assert predicates.likely_files == []


# -- rule 4: languages from the text ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Port it to Rust", "rust"),
        ("cargo build fails", "rust"),
        ("split the crate", "rust"),
        ("edit lib.rs", "rust"),
        ("TypeScript types", "typescript"),
        ("edit app.tsx", "typescript"),
        ("plain JavaScript", "javascript"),
        ("edit app.jsx", "javascript"),
        ("Python 3.11", "python"),
        ("a SQL query", "sql"),
        ("switch to SQLite", "sql"),  # the reference quirk: "sqlite" contains "sql"
        ("Markdown tables", "markdown"),
        ("update the README", "markdown"),
        ("TOML parsing", "toml"),
    ],
)
def test_it_infers_languages_from_the_text(text, language) -> None:
    assert language in predicates_of(text).languages


def test_it_infers_no_language_from_neutral_text() -> None:
    assert predicates_of("Tidy up the wording").languages == []


# -- rule 5: per-file rules ------------------------------------------------------


@pytest.mark.parametrize(
    ("extension", "language"),
    [
        (".rs", "rust"),
        (".toml", "toml"),
        (".md", "markdown"),
        (".sql", "sql"),
        (".ts", "typescript"),
        (".tsx", "typescript"),
        (".js", "javascript"),
        (".jsx", "javascript"),
        (".py", "python"),
    ],
)
def test_it_infers_a_language_from_each_file_extension(extension, language) -> None:
    # The text names only the stem, so the language can come from the extension alone.
    config = files_config(f"src/widget{extension.upper()}")

    assert predicates_of("edit the widget", config=config).languages == [language]


def test_a_sql_file_touches_the_database() -> None:
    predicates = predicates_of("Change db/schema.sql")

    assert predicates.database_touched
    assert predicates.domain_markers == {"data_store": "sql"}
    assert predicates.estimated_blast_radius is RiskClass.HIGH


@pytest.mark.parametrize("file", ["db/migrations/0001_init.py", "src/migration_runner.py"])
def test_a_migration_file_touches_migrations_and_the_database(file) -> None:
    predicates = predicates_of(f"Change {file}")

    assert predicates.migration_touched and predicates.database_touched
    assert predicates.domain_markers == {"migration": "true"}
    assert predicates.estimated_blast_radius is RiskClass.HIGH


@pytest.mark.parametrize(
    ("file", "markers"),
    [
        ("src/auth/login.py", {"auth": "true"}),
        ("src/oauth_client.py", {"auth": "true"}),
        ("src/security/scan.py", {"security": "true"}),
        ("src/auth/security.py", {"auth": "true", "security": "true"}),
    ],
)
def test_an_auth_or_security_file_is_security_sensitive(file, markers) -> None:
    predicates = predicates_of(f"edit {file}")

    assert predicates.auth_touched and predicates.security_sensitive
    assert predicates.domain_markers == markers
    assert predicates.estimated_blast_radius is RiskClass.HIGH


@pytest.mark.parametrize("file", ["src/api/views.py", "web/routes.ts", "src/rapid.py"])
def test_an_api_or_route_file_touches_the_public_interface(file) -> None:
    predicates = predicates_of(f"edit {file}")

    assert predicates.public_api_touched
    assert predicates.domain_markers == {"public_interface": "true"}
    assert predicates.estimated_blast_radius is RiskClass.MEDIUM


@pytest.mark.parametrize("file", ["crates/a/Cargo.toml", "app.json", "ci.yaml", "ci.yml"])
def test_a_manifest_or_data_file_touches_configuration(file) -> None:
    predicates = predicates_of(f"edit {file}")

    assert predicates.config_touched
    assert predicates.domain_markers == {"configuration": "true"}
    assert predicates.estimated_blast_radius is RiskClass.MEDIUM


def test_a_plain_toml_file_touches_config_without_the_configuration_marker() -> None:
    predicates = predicates_of("edit pyproject.toml")

    assert predicates.config_touched
    assert predicates.domain_markers == {}
    assert predicates.languages == ["toml"]


@pytest.mark.parametrize(
    ("file", "is_test_target"),
    [
        ("pkg/store_test.go", True),
        ("web/App.test.tsx", True),
        ("repo/tests/unit.py", True),
        ("tests/unit.py", False),  # "/tests/" needs a segment before it
        ("src/store.go", False),
    ],
)
def test_it_lists_test_files_as_test_targets(file, is_test_target) -> None:
    predicates = predicates_of(f"edit {file}")

    assert (file in predicates.test_targets) is is_test_target


@pytest.mark.parametrize(
    ("file", "modules"),
    [
        ("crates/vsm-core/src/task.rs", ["task", "vsm-core"]),
        ("crates/a/crates/b/Cargo.toml", ["Cargo", "a", "b"]),
        ("src/ab.py", []),  # stem shorter than 3
        ("src/abc.py", ["abc"]),
        ("web/.env.json", []),
    ],
)
def test_it_derives_modules_from_crates_segments_and_file_stems(file, modules) -> None:
    assert predicates_of(f"edit {file}").modules == modules


def test_explicit_likely_files_get_no_per_file_rules() -> None:
    predicates = predicates_of("Tidy up", metadata={"likely_files": "schema.sql|auth"})

    assert predicates.likely_files == ["auth", "schema.sql"]
    assert not predicates.database_touched and not predicates.auth_touched
    assert predicates.domain_markers == {}
    assert predicates.estimated_blast_radius is RiskClass.LOW


# -- rule 6: text predicates -----------------------------------------------------


@pytest.mark.parametrize("word", ["security", "secret", "credential", "vulnerability"])
def test_security_words_make_a_task_security_sensitive(word) -> None:
    predicates = predicates_of(f"Handle the {word.title()} carefully")

    assert predicates.security_sensitive and not predicates.auth_touched
    assert predicates.domain_markers == {"security": "true"}
    assert predicates.estimated_blast_radius is RiskClass.HIGH


@pytest.mark.parametrize("text", ["the public API", "a new endpoint", "a route", "an interface"])
def test_interface_words_touch_the_public_api_without_a_marker(text) -> None:
    predicates = predicates_of(f"Change {text}")

    assert predicates.public_api_touched
    assert predicates.domain_markers == {}


@pytest.mark.parametrize("text", ["the config", "the configuration", "the Settings page"])
def test_configuration_words_touch_config(text) -> None:
    assert predicates_of(f"Change {text}").config_touched


@pytest.mark.parametrize("text", ["add a test", "more tests", "verify it", "input validation"])
def test_verification_words_tag_the_task(text) -> None:
    assert predicates_of(text).tags == ["verification"]


def test_cargo_test_becomes_a_test_target() -> None:
    predicates = predicates_of("Run CARGO TEST -p core")

    assert predicates.test_targets == ["cargo test"]
    assert predicates.tags == ["verification"]


# -- rule 7: configured domain hints -----------------------------------------------


def test_a_domain_hint_sets_its_marker_when_any_keyword_occurs() -> None:
    config = MapperConfig(
        domain_keyword_hints=[
            DomainKeywordHint(marker="billing", keywords=["Invoice", "payment"]),
            DomainKeywordHint(marker="search", keywords=["index"]),
            DomainKeywordHint(marker="everything", keywords=[""]),
        ]
    )

    predicates = predicates_of("Fix invoice totals", config=config)

    assert predicates.domain_markers == {"billing": "true"}


# -- rule 8: explicit metadata ------------------------------------------------------


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize(
    "list_field", ["languages", "likely_files", "modules", "dependencies", "test_targets", "tags"]
)
def test_explicit_lists_are_read_under_every_spelling(spelling, list_field) -> None:
    metadata = {spelling.format(list_field): " zeta, alpha;beta | alpha\n\n ,"}

    predicates = predicates_of("Tidy up", metadata=metadata)

    assert {"alpha", "beta", "zeta"} <= set(getattr(predicates, list_field))


def test_explicit_lists_merge_across_spellings() -> None:
    metadata = {"dependencies": "serde", "task.static_predicates.dependencies": "tokio, serde"}

    assert predicates_of("Tidy up", metadata=metadata).dependencies == ["serde", "tokio"]


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_explicit_domain_markers_are_read_under_every_spelling(spelling) -> None:
    metadata = {spelling.format("domain_markers"): "storage = sqlite, ledger; =orphan, empty="}

    predicates = predicates_of("Tidy up", metadata=metadata)

    assert predicates.domain_markers == {"ledger": "true", "storage": "sqlite"}


@pytest.mark.parametrize(
    "prefix",
    ["domain_marker.", "static_predicates.domain_marker.", "task.static_predicates.domain_marker."],
)
def test_prefixed_keys_set_one_domain_marker(prefix) -> None:
    metadata = {f"{prefix}tier": " gold ", f"{prefix}blank": "  "}

    predicates = predicates_of("Tidy up", metadata=metadata)

    assert predicates.domain_markers == {"tier": "gold"}


def test_explicit_markers_override_inferred_ones() -> None:
    predicates = predicates_of("Change db/schema.sql", metadata={"domain_marker.data_store": "pg"})

    assert predicates.domain_markers["data_store"] == "pg"


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("flag", FLAGS)
def test_explicit_flags_are_read_truthily_under_every_spelling(spelling, flag) -> None:
    predicates = predicates_of("Tidy up", metadata={spelling.format(flag): "Yes"})

    assert getattr(predicates, flag) is True


def test_the_last_spelling_of_a_flag_wins() -> None:
    off_last = {"auth_touched": "true", "task.static_predicates.auth_touched": "no"}
    on_last = {"auth_touched": "no", "static_predicates.auth_touched": "1"}

    assert not predicates_of("Tidy up", metadata=off_last).auth_touched
    assert predicates_of("Tidy up", metadata=on_last).auth_touched


def test_explicit_flags_cannot_clear_an_inferred_one() -> None:
    predicates = predicates_of("Rotate the secret", metadata={"security_sensitive": "false"})

    assert predicates.security_sensitive


@pytest.mark.parametrize(
    ("metadata", "radius"),
    [
        ({"estimated_blast_radius": "critical"}, RiskClass.CRITICAL),
        ({"task.estimated_blast_radius": "LOW"}, RiskClass.LOW),
        ({"task.metadata.estimated_blast_radius": "Medium"}, RiskClass.MEDIUM),
        ({"static_predicates.estimated_blast_radius": "high"}, RiskClass.HIGH),
        ({"task.static_predicates.estimated_blast_radius": "low"}, RiskClass.LOW),
        (
            {"estimated_blast_radius": "low", "static_predicates.estimated_blast_radius": "high"},
            RiskClass.HIGH,
        ),
    ],
)
def test_an_explicit_blast_radius_wins_over_inference(metadata, radius) -> None:
    predicates = predicates_of("Rotate the secret", metadata=metadata)

    assert predicates.estimated_blast_radius is radius


def test_an_unreadable_blast_radius_falls_back_to_inference() -> None:
    predicates = predicates_of("Rotate the secret", metadata={"estimated_blast_radius": "huge"})

    assert predicates.estimated_blast_radius is RiskClass.HIGH


# -- rule 9: blast radius fallback ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metadata", "radius"),
    [
        ("Rotate the secret", {}, RiskClass.HIGH),
        ("Tidy up", {"auth_touched": "true"}, RiskClass.HIGH),
        ("Tidy up", {"database_touched": "true"}, RiskClass.HIGH),
        ("Tidy up", {"migration_touched": "true"}, RiskClass.HIGH),
        ("Add an endpoint", {}, RiskClass.MEDIUM),
        ("Change the config", {}, RiskClass.MEDIUM),
        ("Edit docs/notes.txt", {}, RiskClass.LOW),
        ("Tidy up", {"likely_files": "notes"}, RiskClass.LOW),
        ("Tidy up", {}, None),
    ],
)
def test_it_infers_the_blast_radius_from_what_is_touched(text, metadata, radius) -> None:
    assert predicates_of(text, metadata=metadata).estimated_blast_radius is radius


# -- rule 10: normalisation -------------------------------------------------------------


def test_it_sorts_and_deduplicates_every_list() -> None:
    metadata = {"languages": "rust, python", "tags": "b, a, b", "modules": "z, z"}

    predicates = predicates_of("Edit b.py, a.py and b.py in Python", metadata=metadata)

    assert predicates.likely_files == ["a.py", "b.py"]
    assert predicates.languages == ["python", "rust"]
    assert predicates.tags == ["a", "b"]
    assert predicates.modules == ["z"]


# -- all rules together ---------------------------------------------------------------------


def test_it_reads_a_repository_inventory_end_to_end() -> None:
    config = MapperConfig(
        repository_files=[
            "Cargo.toml",
            "crates/vsm-controller/src/mapper.rs",
            "crates/vsm-controller/src/runtime.rs",
            "crates/vsm-core/src/task.rs",
            "crates/vsm-worker/src/harness.rs",
        ],
        domain_keyword_hints=[
            DomainKeywordHint(marker="predicate_extraction", keywords=["predicates"])
        ],
    )
    directive = DirectiveMessage(
        title="Improve mapper predicates",
        body="Update mapper.rs so TaskPacket static predicates identify Cargo.toml dependency "
        "changes. Run cargo test -p vsm-controller.",
    )

    task = map_directive(directive, config=config)

    assert task.static_predicates == StaticTaskPredicates(
        languages=["rust", "toml"],
        likely_files=["Cargo.toml", "crates/vsm-controller/src/mapper.rs", "mapper.rs"],
        modules=["Cargo", "mapper", "vsm-controller"],
        test_targets=["cargo test"],
        config_touched=True,
        estimated_blast_radius=RiskClass.MEDIUM,
        tags=["verification"],
        domain_markers={"configuration": "true", "predicate_extraction": "true"},
    )
    assert task.scope == task.static_predicates.likely_files
    assert task.metadata["estimated_files_touched"] == "3"


# -- invariants for every input ------------------------------------------------------------

texts = st.text(max_size=60)
path_ish = st.text(alphabet="abcAB/._-`'\"()[]{},;: \n|=", max_size=40)
any_text = st.one_of(texts, path_ish)
metadata_keys = st.one_of(
    st.sampled_from(
        [
            "likely_files",
            "task.languages",
            "static_predicates.domain_markers",
            "domain_marker.x",
            "task.static_predicates.domain_marker.",
            "auth_touched",
            "estimated_blast_radius",
            "requires_code_write",
            "task.metadata.target_child",
        ]
    ),
    texts,
)
directives = st.builds(
    DirectiveMessage,
    title=any_text,
    body=any_text,
    constraints=st.lists(any_text, max_size=3),
    desired_state=st.none() | any_text,
    metadata=st.dictionaries(metadata_keys, any_text, max_size=5),
)
configs = st.builds(
    MapperConfig,
    default_requires_code_write=st.booleans(),
    repository_files=st.lists(path_ish, max_size=5),
    domain_keyword_hints=st.lists(
        st.builds(DomainKeywordHint, marker=texts, keywords=st.lists(texts, max_size=3)),
        max_size=2,
    ),
)


@given(directive=directives, config=configs)
def test_extraction_lists_are_always_sorted_unique_and_non_empty(directive, config) -> None:
    predicates = extract_static_predicates(directive, config)

    for values in (
        predicates.languages,
        predicates.likely_files,
        predicates.modules,
        predicates.dependencies,
        predicates.test_targets,
        predicates.tags,
    ):
        assert values == sorted(set(values))
        assert "" not in values
    for key, value in predicates.domain_markers.items():
        assert key and key == key.strip()
        assert value and value == value.strip()


@given(directive=directives, config=configs)
def test_mapping_never_raises_and_scope_is_the_likely_files(directive, config) -> None:
    task = map_directive(directive, config=config, controller_node_id="root")

    assert task.scope == task.static_predicates.likely_files
    assert task.metadata["requires_code_write"] in ("true", "false")
    assert task.metadata["controller_node_id"] == "root"
    assert list(task.metadata) == sorted(task.metadata)


@given(directive=directives, config=configs)
def test_extraction_does_not_depend_on_metadata_order(directive, config) -> None:
    reordered = DirectiveMessage(
        id=directive.id,
        title=directive.title,
        body=directive.body,
        constraints=directive.constraints,
        desired_state=directive.desired_state,
        metadata=dict(reversed(list(directive.metadata.items()))),
    )

    assert extract_static_predicates(directive, config) == extract_static_predicates(
        reordered, config
    )

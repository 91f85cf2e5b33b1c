"""The command-line contract: org_bootstrap, org_show, genome_patch, ledger_verify."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from organization.models import GenomeVersion

pytestmark = pytest.mark.django_db


def run(*args: str, stdin: str | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> str:
    if stdin is not None and monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_org_bootstrap_then_org_show_prints_the_tree() -> None:
    assert run("org_bootstrap", "--template", "nested").startswith(
        "bootstrapped the nested organization: 3 nodes"
    )

    lines = run("org_show").splitlines()

    assert lines[0].startswith("champion sha256:")
    assert lines[1].startswith("root-codebase-system  [metasystem] Active  can: ")
    assert lines[2].startswith("  backend-system  [metasystem] Active")
    assert lines[3] == (
        "    backend-coder  [leaf:Coding] Active  "
        "can: read_filesystem, research, run_tests, write_code, write_filesystem"
    )


def test_org_bootstrap_twice_changes_nothing() -> None:
    run("org_bootstrap")

    assert "nothing changed" in run("org_bootstrap")
    assert GenomeVersion.objects.count() == 1


def test_org_show_json_gives_the_hash_and_genome() -> None:
    run("org_bootstrap")

    document = json.loads(run("org_show", "--json"))

    assert document["hash"] == GenomeVersion.objects.get().content_hash
    assert set(document["genome"]["nodes"]) == {"root-codebase-system", "primary-code-service"}


def test_org_show_before_bootstrap_explains() -> None:
    with pytest.raises(CommandError, match=r"run `python manage\.py org_bootstrap`"):
        run("org_show")


def test_genome_patch_from_a_file_prints_the_new_hash(tmp_path: Path) -> None:
    run("org_bootstrap")
    patch = tmp_path / "retire.json"
    patch.write_text(
        json.dumps(
            {"kind": "set_node_status", "node_id": "primary-code-service", "status": "Retired"}
        )
    )

    printed = run("genome_patch", str(patch)).strip()

    assert printed == GenomeVersion.objects.latest().content_hash
    assert "primary-code-service  [leaf:Coding] Retired" in run("org_show")


def test_genome_patch_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    run("org_bootstrap")
    patch = {"kind": "add_tool", "node_id": "primary-code-service", "tool": {"name": "ripgrep"}}

    printed = run("genome_patch", "-", stdin=json.dumps(patch), monkeypatch=monkeypatch).strip()

    assert printed.startswith("sha256:")
    assert GenomeVersion.objects.count() == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"kind": ', "stdin is not valid JSON: Expecting value at line 1 column 10"),
        ("[1, 2]", "must hold one JSON object"),
        (
            '{"kind": "remove_subtree", "node_id": "root-codebase-system"}',
            "patch refused, nothing changed: .*root",
        ),
        (
            '{"kind": "add_tool", "node_id": "primary-code-service"}',
            "patch refused, nothing changed: tool",
        ),
    ],
)
def test_genome_patch_refuses_bad_input_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    run("org_bootstrap")

    with pytest.raises(CommandError, match=message):
        run("genome_patch", "-", stdin=text, monkeypatch=monkeypatch)

    assert GenomeVersion.objects.count() == 1


def test_genome_patch_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match=r"cannot read .*missing\.json: No such file"):
        run("genome_patch", str(tmp_path / "missing.json"))

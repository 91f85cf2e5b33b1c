"""What a user sees on the terminal: exit codes and messages of the real commands."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.db import connection

from ledger.immutability import drop_guard, install_guard
from organization.services import genome_bootstrap
from tests.ledger.tampering import rewrite_chain
from tests.support.processes import BASE_DIR, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def manage(
    *args: str, stdin: str | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env={**process_env(), **(extra_env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ledger_verify_exits_0_when_intact_and_1_naming_the_tampered_seq() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    patch = '{"kind": "set_node_status", "node_id": "backend-coder", "status": "Probation"}'
    assert manage("genome_patch", "-", stdin=patch).returncode == 0

    intact = manage("ledger_verify")
    assert (intact.returncode, intact.stdout.strip()) == (0, "ok 2 events")

    drop_guard(connection)
    try:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE ledger_ledgerevent SET actor = 'mallory' WHERE seq = 2")
    finally:
        install_guard(connection)
    tampered = manage("ledger_verify")

    assert tampered.returncode == 1
    assert "ledger chain broken at seq 2: stored hash does not match" in tampered.stderr


def test_a_checkpoint_taken_on_the_terminal_catches_a_rewritten_chain() -> None:
    genome_bootstrap(template="nested", actor="operator:test")
    key = {"VSM_LEDGER_CHECKPOINT_KEY": "a-key-kept-in-the-operators-vault-0123"}

    taken = manage("ledger_verify", "--checkpoint", extra_env=key)
    held = manage("ledger_verify", "--against", taken.stdout.strip(), extra_env=key)
    rewrite_chain(from_seq=1, edit=lambda fields: fields.update(actor="mallory"))
    rewritten = manage("ledger_verify", "--against", taken.stdout.strip(), extra_env=key)
    unsigned = manage("ledger_verify", "--checkpoint", extra_env={"VSM_LEDGER_CHECKPOINT_KEY": ""})

    assert (taken.returncode, taken.stderr.strip()) == (0, "ok 1 events")
    assert taken.stdout.startswith("vsmledger1.1.sha256:")
    assert held.returncode == 0 and "holds checkpoint seq 1" in held.stdout
    assert rewritten.returncode == 1
    assert "not held: seq 1 now has hash" in rewritten.stderr
    assert unsigned.returncode == 1
    assert "VSM_LEDGER_CHECKPOINT_KEY: no checkpoint key is set" in unsigned.stderr


def test_genome_patch_exits_1_with_the_reason_for_a_bad_patch() -> None:
    genome_bootstrap(template="single", actor="operator:test")

    result = manage("genome_patch", "-", stdin='{"kind": "remove_subtree", "node_id": "nowhere"}')

    assert result.returncode == 1
    assert "patch refused, nothing changed" in result.stderr
    assert "nowhere" in result.stderr

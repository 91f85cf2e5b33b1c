"""Signed checkpoints: one line an operator keeps, refused when altered or signed otherwise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoint import Checkpoint, CheckpointError, checkpoint_read, checkpoint_sign

KEY = "k" * 40
TAKEN = datetime(2026, 12, 2, 7, 30, 5, tzinfo=UTC)
A_HASH = "sha256:" + "ab" * 32

positions = st.builds(
    Checkpoint,
    seq=st.integers(min_value=0, max_value=10**12),
    hash=st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: f"sha256:{h}"),
    taken_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2999, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.replace(microsecond=0)),
)


@given(positions)
def test_a_signed_checkpoint_reads_back_as_itself(position: Checkpoint) -> None:
    assert checkpoint_read(checkpoint_sign(position, key=KEY), key=KEY) == position


def test_the_text_is_one_line_naming_seq_and_hash() -> None:
    text = checkpoint_sign(Checkpoint(seq=42, hash=A_HASH, taken_at=TAKEN), key=KEY)

    assert text.startswith(f"vsmledger1.42.{A_HASH}.20261202T073005Z.")
    assert len(text.split(".")[-1]) == 64
    assert not any(character.isspace() for character in text)


@pytest.mark.parametrize(
    "alter",
    [
        lambda text: text.replace("vsmledger1.42.", "vsmledger1.43."),
        lambda text: text.replace(A_HASH, "sha256:" + "cd" * 32),
        lambda text: text.replace("20261202T073005Z", "20261203T073005Z"),
        lambda text: text[:-1] + ("0" if text[-1] != "0" else "1"),
    ],
    ids=["seq", "hash", "time", "signature"],
)
def test_an_altered_checkpoint_is_refused(alter) -> None:
    text = checkpoint_sign(Checkpoint(seq=42, hash=A_HASH, taken_at=TAKEN), key=KEY)

    with pytest.raises(CheckpointError, match="signature is wrong"):
        checkpoint_read(alter(text), key=KEY)


def test_a_checkpoint_signed_with_another_key_is_refused() -> None:
    text = checkpoint_sign(Checkpoint(seq=1, hash=A_HASH, taken_at=TAKEN), key="x" * 40)

    with pytest.raises(CheckpointError, match="signature is wrong"):
        checkpoint_read(text, key=KEY)


@pytest.mark.parametrize("text", ["", "hello", "vsmledger2.1.sha256:00.t.m", "a.b.c.d.e.f"])
def test_text_that_is_no_checkpoint_is_refused(text: str) -> None:
    with pytest.raises(CheckpointError, match="not a ledger checkpoint"):
        checkpoint_read(text, key=KEY)


@pytest.mark.parametrize(("key", "reason"), [("", "no checkpoint key"), ("short", "shorter")])
def test_no_key_or_a_short_key_signs_nothing(key: str, reason: str) -> None:
    with pytest.raises(CheckpointError, match=reason):
        checkpoint_sign(Checkpoint(seq=1, hash=A_HASH, taken_at=TAKEN), key=key)

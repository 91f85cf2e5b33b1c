"""A message event's payload (``to_json``'s output, string keys only) is serialised once."""

from __future__ import annotations

from ledger import kinds
from ledger.chain import canonical_json
from ledger.services import EventDraft, _prepare
from organization.genome import ChannelPriority, VsmChannelType
from workers.domain.messages import MessageEnvelope, PayloadType, to_json


def envelope_wire() -> dict[str, object]:
    envelope = MessageEnvelope(
        channel_type=VsmChannelType.RESOURCE_BARGAINING,
        payload_type=PayloadType.TASK_PACKET,
        priority=ChannelPriority.NORMAL,
        payload={"z": [1.5, -0.0, 10**20, None], "a": {"naïve ✓": True, "b": "\ud800"}},
        trace=["x", "y"],
        metadata={"requires_code_write": "true"},
    )
    return to_json(envelope)


def test_a_payload_with_string_keys_gets_the_text_it_gets_serialised_twice() -> None:
    wire = envelope_wire()
    [(_, once_payload, once_text)] = _prepare(
        [EventDraft(kind=kinds.MESSAGE_PUBLISHED, payload=wire, payload_keys_are_text=True)]
    )
    [(_, twice_payload, twice_text)] = _prepare(
        [EventDraft(kind=kinds.MESSAGE_PUBLISHED, payload=wire)]
    )

    assert once_text == twice_text == canonical_json(twice_payload)
    assert once_payload == twice_payload


def test_keys_that_are_not_strings_still_read_back_sorted_as_strings() -> None:
    [(_, payload, text)] = _prepare(
        [EventDraft(kind=kinds.MESSAGE_PUBLISHED, payload={10: "ten", 2: "two"})]
    )

    assert payload == {"10": "ten", "2": "two"}
    assert text == '{"10":"ten","2":"two"}'

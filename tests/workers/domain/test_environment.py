"""Environment signals: recorded under a kind named by the channel they came on."""

from __future__ import annotations

import pytest

from organization.genome import VsmChannelType
from tests.workers.domain.organizations import envelope
from workers.domain.bargaining import environment_pressure_details
from workers.domain.channel_messages import EnvironmentSignal, EnvironmentSignalKind
from workers.domain.environment import environment_event, environment_event_kind
from workers.domain.messages import PayloadType, to_json


def signal(
    kind: EnvironmentSignalKind = EnvironmentSignalKind.RISK, **fields: object
) -> EnvironmentSignal:
    values: dict[str, object] = {
        "id": "sig-1",
        "observed_by_node_id": "backend-coder",
        "related_task_id": "t1",
        "related_suggestion_id": "s1",
        "source_environment": "ci",
        "summary": "main is red",
        "severity": 6,
        **fields,
    }
    return EnvironmentSignal(kind=kind, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("channel", "kind"),
    [
        (VsmChannelType.OPERATION_TO_ENVIRONMENT, "operation_environment_signal"),
        (VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT, "future_probe_environment_signal"),
        (VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT, "environment_interaction_signal"),
        (VsmChannelType.RESOURCE_BARGAINING, "environment_signal"),
        (VsmChannelType.ALGEDONIC, "environment_signal"),
        (VsmChannelType.THREE_FOUR_HOMEOSTAT, "environment_signal"),
    ],
)
def test_the_event_kind_is_named_by_the_channel(channel: VsmChannelType, kind: str) -> None:
    assert environment_event_kind(channel) == kind


def test_the_event_carries_the_signal_and_where_it_came_from() -> None:
    received = signal()
    incoming = envelope(VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT, PayloadType.ENVIRONMENT_SIGNAL)

    event = environment_event(received, incoming)

    assert event.kind == "environment_interaction_signal"
    assert event.payload == {
        **to_json(received),
        "source_channel": "EnvironmentToEnvironment",
        "source_payload_type": "vsm.environment_signal",
        "causation_id": "env-1",
        "correlation_id": "corr-1",
    }
    assert event.metadata == {
        "source_channel": "EnvironmentToEnvironment",
        "event_name": "environment_interaction_signal",
        "environment_kind": "Risk",
        "severity": "6",
    }
    assert (event.task_id, event.suggestion_id, event.correlation_id) == ("t1", "s1", "corr-1")


def test_an_envelope_without_correlation_correlates_by_its_own_id() -> None:
    incoming = envelope(
        VsmChannelType.OPERATION_TO_ENVIRONMENT, PayloadType.ENVIRONMENT_SIGNAL, correlation_id=None
    )

    event = environment_event(signal(severity=None), incoming)

    assert event.correlation_id == "env-1"
    assert event.payload["correlation_id"] == "env-1"
    assert "severity" not in event.metadata


@pytest.mark.parametrize(
    ("channel", "kind", "risk", "opportunity", "feedback"),
    [
        (VsmChannelType.OPERATION_TO_ENVIRONMENT, EnvironmentSignalKind.RISK, 6.0, 0.0, 0.0),
        (
            VsmChannelType.OPERATION_TO_ENVIRONMENT,
            EnvironmentSignalKind.USER_FEEDBACK,
            0.0,
            0.0,
            6.0,
        ),
        (VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT, EnvironmentSignalKind.RISK, 6.0, 2.1, 0.0),
        (
            VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT,
            EnvironmentSignalKind.OPPORTUNITY,
            0.0,
            6.0,
            0.0,
        ),
        (
            VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT,
            EnvironmentSignalKind.OPPORTUNITY,
            2.1,
            6.0,
            0.0,
        ),
        (
            VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT,
            EnvironmentSignalKind.DEPENDENCY_CHANGE,
            6.6,
            0.0,
            0.0,
        ),
    ],
)
def test_the_pressure_summary_reads_the_events_these_builders_make(
    channel: VsmChannelType,
    kind: EnvironmentSignalKind,
    risk: float,
    opportunity: float,
    feedback: float,
) -> None:
    event = environment_event(signal(kind), envelope(channel, PayloadType.ENVIRONMENT_SIGNAL))

    details = environment_pressure_details([event.as_record()])

    summary = details.pressure
    assert summary.event_count == 1
    assert summary.max_severity == 6
    assert (summary.risk, summary.opportunity, summary.feedback) == pytest.approx(
        (risk, opportunity, feedback)
    )
    assert details.reasons == (
        f"environment_signal channel={channel.value} kind={kind.value} severity=6",
    )


def test_a_signal_on_another_channel_is_recorded_but_is_no_pressure() -> None:
    event = environment_event(
        signal(), envelope(VsmChannelType.RESOURCE_BARGAINING, PayloadType.ENVIRONMENT_SIGNAL)
    )

    assert environment_pressure_details([event.as_record()]).pressure.event_count == 0


def test_an_other_kind_counts_as_an_event_but_weighs_on_nothing() -> None:
    event = environment_event(
        signal(EnvironmentSignalKind.OTHER, other_kind="press coverage"),
        envelope(VsmChannelType.OPERATION_TO_ENVIRONMENT, PayloadType.ENVIRONMENT_SIGNAL),
    )

    pressure = environment_pressure_details([event.as_record()]).pressure

    assert pressure.event_count == 1
    assert (pressure.risk, pressure.opportunity, pressure.feedback) == (0.0, 0.0, 0.0)
    assert event.metadata["environment_kind"] == "other:press coverage"

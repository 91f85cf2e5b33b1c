"""Signals from the environment: recorded under a name that says which way they came. Pure.

An operation reporting what it met outside (OperationToEnvironment), System 4 probing the
future (FutureProbeToEnvironment) and the environment talking to itself, a user or CI
(EnvironmentToEnvironment) each get their own event kind, so the environment pressure summary
can weigh them differently. Nothing is routed: the events are the effect.
"""

from __future__ import annotations

from organization.genome import VsmChannelType
from workers.domain.channel_messages import (
    ChannelEvent,
    EnvironmentSignal,
    correlation_of,
    event_payload,
    kind_label,
)
from workers.domain.messages import MessageEnvelope

OPERATION_ENVIRONMENT_EVENT = "operation_environment_signal"
FUTURE_PROBE_ENVIRONMENT_EVENT = "future_probe_environment_signal"
ENVIRONMENT_INTERACTION_EVENT = "environment_interaction_signal"
ENVIRONMENT_SIGNAL_EVENT = "environment_signal"

EVENT_BY_CHANNEL = {
    VsmChannelType.OPERATION_TO_ENVIRONMENT: OPERATION_ENVIRONMENT_EVENT,
    VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT: FUTURE_PROBE_ENVIRONMENT_EVENT,
    VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT: ENVIRONMENT_INTERACTION_EVENT,
}
# The channels an outside signal may arrive on, the first being the default.
OUTSIDE_CHANNELS = (
    VsmChannelType.OPERATION_TO_ENVIRONMENT,
    VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT,
    VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT,
)


def environment_event_kind(channel: VsmChannelType) -> str:
    """The event kind for a signal on ``channel``; ``environment_signal`` on any other.

    Only the three named kinds count as environment pressure: a signal on another channel
    is recorded but does not weigh on decomposition or grants.
    """
    return EVENT_BY_CHANNEL.get(channel, ENVIRONMENT_SIGNAL_EVENT)


def environment_event(signal: EnvironmentSignal, incoming: MessageEnvelope) -> ChannelEvent:
    """The event for ``signal``, filed under its related task and suggestion."""
    kind = environment_event_kind(incoming.channel_type)
    metadata = {
        "source_channel": incoming.channel_type.value,
        "event_name": kind,
        "environment_kind": kind_label(signal.kind, signal.other_kind),
    }
    if signal.severity is not None:
        metadata["severity"] = str(signal.severity)
    return ChannelEvent(
        kind=kind,
        payload=event_payload(signal, incoming),
        metadata=metadata,
        task_id=signal.related_task_id,
        suggestion_id=signal.related_suggestion_id,
        correlation_id=correlation_of(incoming),
    )

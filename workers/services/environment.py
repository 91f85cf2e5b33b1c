"""Signals from outside the organization: a CI failure, user feedback, an opportunity.

The outside way in for the environment, as ``signal_raise`` is for pain and pleasure. A
signal arrives on OperationToEnvironment (an operation's environment spoke), or, when the
caller says so, FutureProbeToEnvironment (something about the future) or
EnvironmentToEnvironment (the environment talking about itself). It goes to the controller
responsible for its target: the target's parent, or the root when the signal names no target
or names the root. That controller records it as environment pressure, which weighs on how it
decomposes directives and grants resources.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import kinds
from ledger.services import EventDraft, ledger_batch, ledger_record
from organization.genome import ChannelPriority, OrganizationalGenome, VsmChannelType
from organization.selectors import champion_genome
from workers.domain.channel_messages import EnvironmentSignal
from workers.domain.environment import OUTSIDE_CHANNELS
from workers.domain.messages import MessageEnvelope, PayloadType, to_json
from workers.errors import NoOrganization, Rejected
from workers.events import ancestors_of
from workers.services.algedonic import responsible_controller
from workers.services.transport import envelope_publish


@dataclass(frozen=True, kw_only=True)
class RaisedEnvironmentSignal:
    """A stored outside signal: the envelope that carries it and the controller it went to."""

    signal: EnvironmentSignal
    channel: VsmChannelType
    controller_node_id: str
    envelope_id: str


def environment_signal_raise(
    *,
    signal: EnvironmentSignal,
    channel: VsmChannelType = VsmChannelType.OPERATION_TO_ENVIRONMENT,
    raised_by: str,
) -> RaisedEnvironmentSignal:
    """Record ``signal`` and send it to the controller responsible for its target.

    Invariant: the ``environment_signal_raised`` event, the envelope and its
    ``message_published`` event commit together, and the envelope is delivered only then.
    Raises Rejected (a 400 at the API), naming the field and storing nothing, when
    there is no organization yet, the channel is not one an outside signal may use, or the
    target or observing node does not exist.
    """
    genome = champion_genome()
    if genome is None:
        raise NoOrganization()
    _check(signal, channel, genome)
    controller = responsible_controller(genome, signal.target_node_id)
    with ledger_batch():
        ledger_record(
            _raised_event(
                signal, channel, genome, controller, raised_by=raised_by, genome_id=genome.id
            )
        )
        row = envelope_publish(
            envelope=MessageEnvelope(
                channel_type=channel,
                source_node_id=signal.observed_by_node_id,
                target_node_id=controller,
                correlation_id=signal.id,
                priority=ChannelPriority.NORMAL,
                payload_type=PayloadType.ENVIRONMENT_SIGNAL,
                payload=to_json(signal),
                metadata={"raised_by": raised_by},
            ),
            genome=genome,
            task_id=signal.related_task_id,
            suggestion_id=signal.related_suggestion_id,
        )
    return RaisedEnvironmentSignal(
        signal=signal, channel=channel, controller_node_id=controller, envelope_id=row.id
    )


def _raised_event(
    signal: EnvironmentSignal,
    channel: VsmChannelType,
    genome: OrganizationalGenome,
    controller: str,
    *,
    raised_by: str,
    genome_id: str,
) -> EventDraft:
    about = signal.target_node_id or controller
    return EventDraft(
        kind=kinds.ENVIRONMENT_SIGNAL_RAISED,
        actor=raised_by,
        payload={**to_json(signal), "channel": channel.value, "handled_by_controller": controller},
        node_id=about,
        responsible_ancestor_ids=ancestors_of(genome, about),
        task_id=signal.related_task_id,
        suggestion_id=signal.related_suggestion_id,
        correlation_id=signal.id,
        genome_id=genome_id,
    )


def _check(
    signal: EnvironmentSignal, channel: VsmChannelType, genome: OrganizationalGenome
) -> None:
    errors: dict[str, list[str]] = {}
    if channel not in OUTSIDE_CHANNELS:
        allowed = ", ".join(c.value for c in OUTSIDE_CHANNELS)
        errors["channel"] = [f"An outside signal arrives on one of {allowed}."]
    for name in ("target_node_id", "observed_by_node_id"):
        node_id = getattr(signal, name)
        if node_id is not None and node_id not in genome.nodes:
            errors[name] = [f"No node is called {node_id!r}."]
    if errors:
        raise Rejected(errors)

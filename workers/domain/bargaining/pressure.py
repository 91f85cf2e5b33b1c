"""Pressure on grants: System 2 coordination and the environment (docs/rules/bargaining.md)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from organization.genome import VsmChannelType
from workers.domain.bargaining.records import (
    COORDINATION_EVENT_KIND,
    ENVIRONMENT_EVENT_KINDS,
    HOMEOSTAT_EVENT_KIND,
    MAX_REASONS,
    EventRecord,
    event_parts,
    first_text,
    json_unsigned,
    text_unsigned,
)
from workers.domain.decomposition import NO_PRESSURE, EnvironmentPressure

# -- System 2 coordination pressure (docs/rules/bargaining.md, "System 2 pressure") ------------


@dataclass(frozen=True, kw_only=True)
class CoordinationPressure:
    """Contention, oscillation and blocked dependencies System 2 reported around one child."""

    event_count: int = 0
    contention_count: int = 0
    oscillation_count: int = 0
    dependency_blocked_count: int = 0
    pressure: float = 0.0
    max_severity: int = 0
    reasons: tuple[str, ...] = ()

    @property
    def affects_allocation(self) -> bool:
        return self.event_count > 0 and (self.max_severity >= 5 or self.pressure >= 8)

    def token_cap(self, requested_tokens: int) -> int | None:
        """A half (a quarter under heavy pressure) of the request, when the pressure applies."""
        if not self.affects_allocation:
            return None
        heavy = self.max_severity >= 8 or self.oscillation_count > 1 or self.pressure >= 16
        return max(1, requested_tokens // (4 if heavy else 2))

    def as_json(self) -> dict[str, Any]:
        return {
            "event_count": self.event_count,
            "contention_count": self.contention_count,
            "oscillation_count": self.oscillation_count,
            "dependency_blocked_count": self.dependency_blocked_count,
            "pressure": self.pressure,
            "max_severity": self.max_severity,
            "reasons": list(self.reasons),
        }


NO_COORDINATION_PRESSURE = CoordinationPressure()
_COORDINATION_FACTORS = {"Contention": 1.0, "Oscillation": 1.25, "DependencyBlocked": 0.75}


def summarise_coordination_pressure(
    events: Iterable[EventRecord], requester_id: str
) -> CoordinationPressure:
    """Pressure from ``system2_coordination_signal`` events naming the requester as source,
    target or affected node. Severity: payload, else metadata, else 1; at most 10."""
    counts = dict.fromkeys(_COORDINATION_FACTORS, 0)
    pressure, max_severity = 0.0, 0
    reasons: list[str] = []
    for event in events:
        payload, metadata = event_parts(event)
        if event.get("kind") != COORDINATION_EVENT_KIND or not _names(payload, requester_id):
            continue
        kind = first_text(payload.get("kind"), metadata.get("coordination_kind"), default="Other")
        if kind not in _COORDINATION_FACTORS:
            continue
        severity = json_unsigned(payload.get("severity"))
        if severity is None:
            severity = text_unsigned(metadata.get("severity"))
        severity = min(1 if severity is None else severity, 10)
        counts[kind] += 1
        pressure += max(severity, 1) * _COORDINATION_FACTORS[kind]
        max_severity = max(max_severity, severity)
        if len(reasons) < MAX_REASONS:
            reasons.append(f"system2_coordination kind={kind} severity={severity}")
    return CoordinationPressure(
        event_count=sum(counts.values()),
        contention_count=counts["Contention"],
        oscillation_count=counts["Oscillation"],
        dependency_blocked_count=counts["DependencyBlocked"],
        pressure=pressure,
        max_severity=max_severity,
        reasons=tuple(reasons),
    )


def _names(payload: Mapping[str, Any], node_id: str) -> bool:
    affected = payload.get("affected_node_ids")
    return (
        payload.get("source_node_id") == node_id
        or payload.get("target_node_id") == node_id
        or (isinstance(affected, list) and node_id in affected)
    )


# -- environment pressure (docs/rules/bargaining.md, "Environment pressure") -------------------


@dataclass(frozen=True, kw_only=True)
class EnvironmentPressureDetails:
    """The full summary; ``pressure`` is the part decomposition and bargaining read."""

    pressure: EnvironmentPressure = NO_PRESSURE
    future_probe_count: int = 0
    interaction_count: int = 0
    reasons: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "event_count": self.pressure.event_count,
            "risk_pressure": self.pressure.risk,
            "opportunity_pressure": self.pressure.opportunity,
            "feedback_pressure": self.pressure.feedback,
            "future_probe_count": self.future_probe_count,
            "environment_interaction_count": self.interaction_count,
            "homeostat_count": self.pressure.homeostat_count,
            "max_severity": self.pressure.max_severity,
            "reasons": list(self.reasons),
        }


# Which pressure (risk, opportunity or feedback) an event feeds, and with what factor, by the
# payload kind of the signal and by the balance of a Three-Four homeostat signal.
_KIND_PRESSURE: dict[str, tuple[str, float]] = {
    "Risk": ("risk", 1.0),
    "Opportunity": ("opportunity", 1.0),
    "UserFeedback": ("feedback", 1.0),
    "DependencyChange": ("risk", 0.75),
    "CapabilityChange": ("opportunity", 0.75),
    "FutureRisk": ("risk", 1.0),
    "PresentConstraint": ("risk", 1.0),
    "ResourceImbalance": ("risk", 1.0),
    "CoordinationDebt": ("risk", 1.0),
    "FutureOpportunity": ("opportunity", 1.0),
    "CapabilityGap": ("opportunity", 1.0),
}
_BALANCE_PRESSURE: dict[str, tuple[str, float]] = {
    "FutureDominant": ("opportunity", 0.5),
    "PresentDominant": ("risk", 0.5),
    "Conflict": ("risk", 0.5),
    "Balanced": ("feedback", 0.25),
}
_PROBE = VsmChannelType.FUTURE_PROBE_TO_ENVIRONMENT.value
_INTERACTION = VsmChannelType.ENVIRONMENT_TO_ENVIRONMENT.value
_HOMEOSTAT = VsmChannelType.THREE_FOUR_HOMEOSTAT.value


def environment_pressure_details(events: Iterable[EventRecord]) -> EnvironmentPressureDetails:
    """Risk, opportunity and feedback pressure from environment and homeostat events.

    Severity is the payload's (1 when absent, at most 10); each event weighs max(severity, 1).
    """
    total = {"risk": 0.0, "opportunity": 0.0, "feedback": 0.0}
    count = homeostats = probes = interactions = max_severity = 0
    reasons: list[str] = []
    for event in events:
        payload, metadata = event_parts(event)
        if event.get("kind") not in ENVIRONMENT_EVENT_KINDS:
            continue
        count += 1
        severity = json_unsigned(payload.get("severity"))
        severity = min(1 if severity is None else severity, 10)
        max_severity = max(max_severity, severity)
        weight = float(max(severity, 1))
        kind = first_text(payload.get("kind"), default="Observation")
        channel = first_text(
            payload.get("source_channel"), metadata.get("source_channel"), default="Unknown"
        )

        if kind in _KIND_PRESSURE:
            name, factor = _KIND_PRESSURE[kind]
            total[name] += weight * factor
        if channel == _PROBE:
            probes += 1
            if kind != "Opportunity":
                total["opportunity"] += weight * 0.35
        elif channel == _INTERACTION:
            interactions += 1
            if kind != "Risk":
                total["risk"] += weight * 0.35
        elif channel == _HOMEOSTAT:
            homeostats += 1
            balance = first_text(payload.get("balance"), default="Balanced")
            if balance in _BALANCE_PRESSURE:
                name, factor = _BALANCE_PRESSURE[balance]
                total[name] += weight * factor
        if event.get("kind") == HOMEOSTAT_EVENT_KIND and channel != _HOMEOSTAT:
            homeostats += 1
        if len(reasons) < MAX_REASONS:
            reasons.append(f"environment_signal channel={channel} kind={kind} severity={severity}")
    pressure = EnvironmentPressure(
        event_count=count,
        homeostat_count=homeostats,
        risk=total["risk"],
        opportunity=total["opportunity"],
        feedback=total["feedback"],
        max_severity=max_severity,
    )
    return EnvironmentPressureDetails(
        pressure=pressure,
        future_probe_count=probes,
        interaction_count=interactions,
        reasons=tuple(reasons),
    )


def summarise_environment_pressure(events: Iterable[EventRecord]) -> EnvironmentPressure:
    return environment_pressure_details(events).pressure


def homeostat_pressure_affects_allocation(pressure: EnvironmentPressure) -> bool:
    return pressure.homeostat_count > 0 and pressure.max_severity >= 7 and pressure.risk >= 7


def homeostat_token_cap(pressure: EnvironmentPressure, requested_tokens: int) -> int | None:
    """A half (a quarter when severe or very risky) of the request, when the pressure applies."""
    if not homeostat_pressure_affects_allocation(pressure):
        return None
    severe = pressure.max_severity >= 9 or pressure.risk >= 12
    return max(1, requested_tokens // (4 if severe else 2))

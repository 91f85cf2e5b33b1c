"""What the runtime tells the app above it (``trials``), without importing it.

``workers`` sits below ``trials`` (docs/architecture.md, "Floors"): a controller that meets
evolution's business in a hop (a freeze, a suggested gene, an audit report, trial evidence)
sends one of these Django signals, and the trials app's receivers act on it inside the same
transaction, so the hop and its consequences commit together or not at all. With no
receiver connected (the trials app not installed) each is recorded and nothing more.

Each signal's ``sender`` is the controller's node id; keyword arguments as listed.
"""

from __future__ import annotations

from django.dispatch import Signal

# An algedonic ``freeze_mutation`` at a controller. kwargs: ``controller_node_id``,
# ``suggestion_id`` (the signal's related suggestion, or None), ``message``, ``event_context``
# (an ``EventDraft`` with the hop's tags). Receivers return the list of action strings they
# applied (``active_trial_frozen=<id>``, …). Sent once per signal on its way up (an escalated
# signal naming no suggestion is not sent again by the ancestors); receivers are idempotent.
mutation_freeze_requested = Signal()

# A gene suggested in a hop (a Three-Four homeostat patch). kwargs: ``draft`` (a
# ``workers.domain.homeostat.GeneSuggestionDraft``), ``controller_node_id``, ``event_context``.
# Receivers queue it as a trial.
gene_suggested = Signal()

# A System 3* audit report arriving on the Audit channel. kwargs: ``report`` (the payload as
# sent), ``controller_node_id``, ``incoming`` (the ``MessageEnvelope``), ``event_context``.
audit_report_received = Signal()

# A result that is evidence for a controller's live trial (either arm) reached that
# controller. kwargs: ``trial_id``, ``controller_node_id``, ``task_id``, ``trace_id`` (the
# leaf's trace, or None for a routing failure), ``trial_route_role`` ("control", "shadow", or
# "" for the champion's arm). Receivers evaluate the trial (after commit).
trial_evidence_arrived = Signal()

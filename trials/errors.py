"""The trials app's errors: each a ``workers.errors.Rejected`` an edge turns into a 4xx."""

from __future__ import annotations

from workers.errors import Rejected


class SuggestionRefused(Rejected):
    """A suggestion whose patch does not apply to the champion (a 400); nothing is queued."""


class TrialConflict(Rejected):
    """The trial is not in a state that allows this (a 409): not pending, not queued, or the
    controller already runs a live trial."""


class TrialNotFound(Rejected):
    """No trial has that id (a 404)."""

    def __init__(self, trial_id: str) -> None:
        super().__init__({"trial_id": [f"No trial is called {trial_id!r}."]})


class ApprovalDenied(Rejected):
    """The user may not approve or reject trials (a 403): they lack ``trials.approve_trial``."""

    def __init__(self, username: str) -> None:
        super().__init__(
            {"permission": [f"{username or 'this user'} lacks the trials.approve_trial permission"]}
        )


class AuditRefused(Rejected):
    """An audit of a node that is not in the champion or is not a metasystem (a 400)."""

    def __init__(self, controller_node_id: str, problem: str) -> None:
        self.controller_node_id = controller_node_id
        super().__init__({"controller_node_id": [problem]})


class GenerationRefused(Rejected):
    """An evolution generation of a node that is not a metasystem of the champion (a 400)."""

    def __init__(self, controller_node_id: str, problem: str) -> None:
        self.controller_node_id = controller_node_id
        super().__init__({"controller_node_id": [problem]})


class GenerationConflict(Rejected):
    """Another generation of the controller, or a new champion, landed meanwhile (a 409);
    nothing of this generation was kept."""

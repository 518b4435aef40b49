"""Errors of the paging domain."""

from __future__ import annotations

from callcenter.errors import Conflict, InvalidInput, NotFound


class IncidentNotFound(NotFound):
    error_id = "incident_not_found"


class IncidentClosed(Conflict):
    """Acknowledging or paging an incident that is no longer open."""

    error_id = "incident_not_open"


class InvalidPolicy(InvalidInput):
    error_id = "escalation_policy_invalid"


class InvalidIncident(InvalidInput):
    error_id = "incident_invalid"

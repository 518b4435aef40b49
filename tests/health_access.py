"""Seeing ``/healthz`` details in tests: they are shown only with the
``[http] health_token`` (or a supervisor's token); anyone else gets the status."""

from __future__ import annotations

from dataclasses import replace

from callcenter.settings import Secret, Settings

HEALTH_TOKEN = "health-token-for-tests"
HEALTH_HEADERS = {"Authorization": f"Bearer {HEALTH_TOKEN}"}
HEALTH_HTTP = {"health_token": HEALTH_TOKEN}  # the ``[http]`` table for settings_from_mapping


def with_health_token(settings: Settings) -> Settings:
    return replace(settings, http=replace(settings.http, health_token=Secret(HEALTH_TOKEN)))

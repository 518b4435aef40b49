"""Every domain's tables, imported so the metadata is complete (migrations, tests)."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

from callcenter.db.base import Base

MODEL_MODULES = (
    "callcenter.directory.models",
    "callcenter.auth.models",
    "callcenter.console.models",
    "callcenter.calls.models",
    "callcenter.calls.callback_models",
    "callcenter.oncall.models",
    "callcenter.paging.models",
    "callcenter.ha.models",
    "callcenter.outbound.models",
    "ticketing.models",
    "ticketing.sla_models",
    "ticketing.group_models",
    "recordings.models",
    "ivr.outages.models",
)


def all_metadata() -> MetaData:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata

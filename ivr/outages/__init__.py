"""停水停电通知 (outage notices): what callers of a building hear right after the greeting.

``models`` (the table), ``prompts`` (the notice's audio, spoken from its text),
``services`` (posting, ending, reading, and the notices a caller hears), ``http``
(``/api/outages`` and the ``/outages`` page) and ``setup`` (what ``create_app``
calls). See docs/OUTAGES.md.
"""

"""Prometheus metrics of the server (``/metrics``): a registry per app, the
recorders that fill it from the parts' own hooks, and the endpoint.

Modules: ``registry`` (the metric objects), ``recorders`` (AMI links, the bus,
screen-pops), ``agi`` (AGI command latency), ``transcription`` (job time,
backlog), ``http`` (the endpoint and who may scrape), ``setup`` (the wiring).
"""

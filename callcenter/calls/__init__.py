"""Calls: live tracking from AMI events (``tracker``), the call log
(``models``, ``services``) and its HTTP API (``http``)."""

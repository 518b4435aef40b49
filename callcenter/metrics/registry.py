"""The metric objects of one server, in a ``CollectorRegistry`` of its own.

Never prometheus_client's global registry: two applications in one process
(the tests start many) each count their own calls. Names carry the
``callcenter_`` prefix and their unit (``_seconds``, ``_total``); labels are
few-valued only (a link's or queue's name, a community code, an outcome), never
a phone number, a call or ticket id, or a person.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# AGI round trips: a prompt played to its end takes seconds, a variable a few ms.
# Few buckets: this histogram has a series per transport and verb (~30), and a
# scrape renders each bucket of each (bench/metrics_scrape.py).
AGI_BUCKETS = (0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 60.0)
QUEUE_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
POP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """Every metric the server exports; the parts that record get this object."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.ami_link_up = Gauge(
            "callcenter_ami_link_up", "1 while the AMI link is logged in, else 0.",
            ["link"], registry=r)
        self.ha_link_owned = Gauge(
            "callcenter_ha_link_owned",
            "1 while this server holds the link's lease and drives it, else 0 (standby). "
            "On SQLite the single server owns every link.", ["link"], registry=r)
        self.ami_reconnects = Counter(
            "callcenter_ami_reconnects", "Logins to Asterisk after the first, per link.",
            ["link"], registry=r)
        self.ami_events = Counter(
            "callcenter_ami_events_received",
            "AMI events dispatched to the server's listeners (rate(): events/s).",
            ["link"], registry=r)
        self.agi_command_seconds = Histogram(
            "callcenter_agi_command_duration_seconds",
            "One AGI command, sent to its reply, by transport and command verb.",
            ["transport", "command"], buckets=AGI_BUCKETS, registry=r)
        self.calls = Counter(
            "callcenter_calls", "Calls ended, by outcome and community.",
            ["outcome", "community"], registry=r)
        self.queue_wait_seconds = Histogram(
            "callcenter_queue_wait_seconds",
            "Time a caller spent in a queue, joining to leaving (answered, gone or timed out).",
            ["queue"], buckets=QUEUE_BUCKETS, registry=r)
        self.queue_abandoned = Counter(
            "callcenter_queue_abandoned", "Callers who hung up while waiting in a queue.",
            ["queue"], registry=r)
        self.screenpop_frames = Counter(
            "callcenter_screenpop_frames_sent",
            "Screen-pop frames put on agents' connections (first pops and updates).",
            registry=r)
        self.screenpop_latency_seconds = Histogram(
            "callcenter_screenpop_latency_seconds",
            "From the ringing event to the pop on the ringing agent's connection "
            "(its count: pops delivered to a ringing phone).",
            buckets=POP_BUCKETS, registry=r)
        self.incidents_opened = Counter(
            "callcenter_incidents_opened", "Emergency incidents opened.", registry=r)
        self.paging_steps = Counter(
            "callcenter_paging_steps",
            "Paging phone calls made, by outcome (accepted, passed, no_answer, busy, "
            "failed, ...; deferred: the PBX was down, nothing rang).", ["outcome"], registry=r)
        self.paging_acks = Counter(
            "callcenter_paging_acks", "Incidents acknowledged, by how (phone, console, api).",
            ["via"], registry=r)
        self.transcription_backlog = Gauge(
            "callcenter_transcription_backlog",
            "Transcription jobs not finished, by state (queued, running); read at scrape time.",
            ["state"], registry=r)
        self.transcription_job_seconds = Histogram(
            "callcenter_transcription_job_duration_seconds",
            "One recording decoded by the Vosk pool, by outcome (ok, error, timeout).",
            ["outcome"], buckets=JOB_BUCKETS, registry=r)
        self.tickets_overdue = Gauge(
            "callcenter_tickets_overdue",
            "Tickets still new past their response deadline (ticketing.sla), by priority; "
            "read at scrape time.", ["priority"], registry=r)
        self.sla_breaches = Counter(
            "callcenter_sla_breaches",
            "SLA clocks of work orders that ran out (ticketing.sla_worker), by kind "
            "(response, red_light, escalation); each fires once across the servers.",
            ["kind"], registry=r)
        self.scrape_refresh_errors = Counter(
            "callcenter_metrics_refresh_errors",
            "Scrapes whose database figures could not be read (the last ones are shown).",
            registry=r)

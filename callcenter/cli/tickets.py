"""voicemail scan / voicemail purge: the ingest run once from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from callcenter.cli.common import database, settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser("voicemail", help="voicemail → repair tickets (scan the spool once)",
                       description="Scan Asterisk's voicemail spool once and turn new "
                                   "messages into repair tickets.")
    vsub = p.add_subparsers(dest="voicemail_command", metavar="ACTION", required=True)
    s = vsub.add_parser("scan", help="scan the spool once, transcribe and make tickets",
                        description="Scan the voicemail spool once: register new messages, "
                                    "transcribe them and create one ticket each; print what "
                                    "was done.")
    s.add_argument("--spool", help="spool directory (default: voicemail.spool_dir)")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_scan)
    r = vsub.add_parser("purge", help="delete recordings older than voicemail.retention_days",
                        description="Delete recording files older than the retention period "
                                    "(tickets stay).")
    r.set_defaults(func=cmd_purge)


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return
    print(f"发现 {report.found} 条留言：新登记 {report.registered}，已处理过 {report.known}，"
          f"重复副本 {report.duplicates}")
    for job in report.jobs:
        what = f"工单 {job.ticket_number}" if job.ticket_number else "未建工单"
        why = f"（{job.error_id}: {job.reason}）" if job.error_id else ""
        print(f"  录音 {job.recording_id} → {what} [{job.state}]{why}")


def cmd_scan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from callcenter.bus import DomainEvent, EventBus
    from callcenter.clock import SystemClock
    from callcenter.paging.services import PagingService
    from callcenter.tickets import build_ingest, default_triage, transcriber_from_settings

    settings = settings_from_args(args)
    opened: list[dict[str, Any]] = []

    async def go() -> Any:
        async with database(settings) as sm, transcriber_from_settings(settings) as pool:
            # An emergency message opens its incident here, exactly as in the server:
            # the incident and its first escalation step are written to the database,
            # where the running server's escalation worker picks the step up and dials.
            bus, clock = EventBus(), SystemClock()
            paging = PagingService(sm, clock, bus)
            bus.subscribe("incident.requested", paging.on_incident_requested)

            async def note(event: DomainEvent) -> None:
                opened.append(event.data)

            bus.subscribe("incident.opened", note)
            triage = default_triage(settings.triage.lexicon)
            ingest = await build_ingest(settings, sm, pool, triage, bus=bus, clock=clock,
                                        spool_dir=Path(args.spool) if args.spool else None)
            report = await ingest.scan_and_process()
            await bus.drain()
            return report

    report = asyncio.run(go())
    _print_report(report, args.json)
    if not args.json:
        for data in opened:
            print(f"  紧急事件 {data.get('incident_id', '')} 已开启，由运行中的服务呼叫值班工程师"
                  f" / incident opened; the running server pages the engineer on call")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from callcenter.tickets import build_ingest

    settings = settings_from_args(args)

    async def go() -> int:
        async with database(settings) as sm:
            ingest = await build_ingest(settings, sm, None, None)
            return await ingest.purge_expired()

    n = asyncio.run(go())
    print(f"已删除 {n} 个过期录音文件 / deleted {n} recording file(s)")
    return 0

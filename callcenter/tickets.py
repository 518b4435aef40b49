"""The ports the ticketing domain gets from the rest of the server: ``setup_tickets``.

The wiring itself (routes, services, the ingest's ``cleanup_ctx``) is
``ticketing.setup``'s; this module builds what it cannot know: the ingest with
the directory's caller lookup and the speech pool, the durable emergency pages
(``UnpagedEmergencies``, below) and the listen notices' notifier
(``StaffListenNotifier``: on-call, office hours and staff channels).

``incident.requested`` for an emergency voicemail is published in memory after
its ticket commits, so a crash in between, a paging service not yet listening
at start-up, or a failure in opening the incident would lose the page.
``UnpagedEmergencies`` makes it durable: once the app has started and every
``voicemail.scan_interval_s`` after, it finds emergency voicemail tickets that
are still new and that no incident report references (paging stores the ticket
number as the report's ``reference``), and requests their incident again.
Paging joins a second request for the same place and category to the open
incident, so nobody is paged twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.appkeys import BUS, CLOCK, HEALTH_EXTRAS, SESSIONMAKER, SETTINGS
from callcenter.bus import EventBus
from callcenter.clock import Clock, SystemClock
from callcenter.directory.models import StaffUser, works_for
from callcenter.directory.services import community_by_code, lookup_by_number
from callcenter.notify.base import Notification
from callcenter.notify.staff import StaffNotifiers
from callcenter.oncall.errors import NoSchedule, UnknownCommunity
from callcenter.oncall.services import OnCallPerson, find_community, who_is_on_call
from callcenter.paging.models import IncidentReport
from callcenter.screenpop.setup import STAFF_NOTIFIERS
from callcenter.settings import Settings, SettingsError
from ivr.holidays import HOLIDAY_FILE, HolidayCalendar, HolidayFile
from ivr.timeconditions import (
    HOURS_FILE,
    Mode,
    TimeConditions,
    TimeModes,
    load_time_conditions,
)
from recordings.ingest import Transcriber, TriageFn, TriageLike, VoicemailIngest
from ticketing import setup as ticketing_setup
from ticketing.listen import ListenDelivery, ListenNotice, ListenNotices
from ticketing.models import Department, DepartmentMember, Ticket
from ticketing.services import TicketService
from ticketing.setup import VOICEMAIL_INGEST, SlaSetup
from ticketing.sla_policy import SLA_FILE, SlaPolicyError, load_policy
from ticketing.sla_worker import NOBODY, SlaBreach, SlaDelivery

__all__ = ["VOICEMAIL_INGEST", "UnpagedEmergencies", "build_ingest", "default_triage",
           "setup_tickets", "transcriber_from_settings"]

log = logging.getLogger(__name__)

class UnpagedEmergencies:
    """Emergency voicemail tickets whose ``incident.requested`` was lost.

    A ticket counts when it came from voicemail, is an emergency, is still
    ``new`` (once someone dispatched it, a person is on it), was created at
    least ``grace_s`` ago (its live request has had time to open the incident)
    and at most ``lookback_s`` ago, and no incident report has its number.

    One older than ``lookback_s`` (the server was down for a day) is not paged:
    ringing an engineer at night about yesterday's burst pipe helps nobody. It
    is logged as an error once and listed in ``/healthz`` (``emergencies.stale``)
    until someone dispatches or closes it."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], tickets: TicketService,
                 clock: Clock, *, interval_s: float = 60.0, grace_s: float = 60.0,
                 lookback_s: float = 24 * 3600.0) -> None:
        self._sm = sessionmaker
        self._tickets = tickets
        self._clock = clock
        self._interval = interval_s
        self._grace = timedelta(seconds=grace_s)
        self._lookback = timedelta(seconds=lookback_s)
        self.stale: list[str] = []  # numbers of the tickets too old to page, last pass
        self._reported: set[str] = set()

    def _unpaged(self) -> Any:
        paged = exists().where(IncidentReport.reference == Ticket.number)
        return (Ticket.source == "voicemail", Ticket.priority == "emergency",
                Ticket.state == "new", ~paged)

    async def find(self) -> list[int]:
        now = self._clock.now()
        async with self._sm() as session:
            rows = await session.scalars(
                select(Ticket.id).where(
                    *self._unpaged(), Ticket.created_at <= now - self._grace,
                    Ticket.created_at >= now - self._lookback,
                ).order_by(Ticket.id))
            return list(rows.all())

    async def find_stale(self, limit: int = 50) -> list[str]:
        """Numbers of unpaged emergency tickets older than the look-back, oldest first."""
        now = self._clock.now()
        async with self._sm() as session:
            rows = await session.scalars(
                select(Ticket.number).where(*self._unpaged(),
                                            Ticket.created_at < now - self._lookback)
                .order_by(Ticket.created_at, Ticket.id).limit(limit))
            return list(rows.all())

    async def report_stale(self) -> list[str]:
        """Log each stale ticket once (per process); keep the list for ``/healthz``."""
        self.stale = await self.find_stale()
        for number in self.stale:
            if number not in self._reported:
                self._reported.add(number)
                log.error("emergency ticket %s was never paged and is older than %d h: "
                          "not paging it now; dispatch or close it by hand", number,
                          self._lookback.total_seconds() // 3600)
        return self.stale

    async def health(self) -> dict[str, object]:
        """A ``HEALTH_EXTRAS`` section."""
        return {"emergencies": {"stale": list(self.stale)}}

    async def request_missing(self) -> list[int]:
        """Request an incident for each such ticket; returns their ids."""
        ids = await self.find()
        for ticket_id in ids:
            view = await self._tickets.get(ticket_id)
            log.warning("emergency ticket %s has no incident: requesting one again", view.number)
            self._tickets.request_incident(view)
        return ids

    async def run(self, started: asyncio.Event) -> None:
        """Once ``started`` is set (paging listens by then), now and every interval."""
        await started.wait()
        while True:
            try:
                await self.request_missing()
                await self.report_stale()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for unpaged emergency tickets failed")
            await self._clock.sleep(self._interval)

TranscriberSource = Transcriber | Callable[[web.Application], Transcriber | None] | None


def default_triage(lexicon_dir: Path | None = None) -> TriageFn | None:
    """The triage rules of ``ticketing.triage`` when present, with the company
    lexicon in ``lexicon_dir`` (``[triage] lexicon``, checked when the settings
    were loaded) or the built-in one."""
    try:
        from ticketing.triage import load_lexicon, triage
    except ImportError:
        log.warning("ticketing.triage is missing: voicemail tickets are filed as 'other'")
        return None
    if lexicon_dir is None:
        fn: TriageFn = triage
        return fn
    lexicon = load_lexicon(lexicon_dir)
    log.info("triage uses the lexicon in %s", lexicon_dir)

    def with_lexicon(text: str) -> TriageLike:
        return triage(text, lexicon)

    return with_lexicon


@asynccontextmanager
async def transcriber_from_settings(settings: Settings) -> AsyncIterator[Transcriber | None]:
    """The vosk pool when a model is configured (``[vosk] model_path``) or unpacked
    under ``<data_dir>/models`` by ``callcenter vosk download``; started and stopped
    around the block."""
    model_path: Path | str | None = settings.vosk.model_path
    if model_path is None:
        from recordings.errors import ModelNotFound
        from recordings.vosk_model import model_in_data_dir

        try:
            model_path = model_in_data_dir(settings.data_dir)
        except ModelNotFound as exc:
            log.error("%s: voicemail is not transcribed", exc)
            yield None
            return
        if model_path is None:
            log.warning("no Vosk model (set vosk.model_path or run `callcenter vosk download`): "
                        "voicemail is not transcribed")
            yield None
            return
        log.info("using the Vosk model in %s", model_path)
    try:
        from recordings.transcribe import TranscriberPool
    except ImportError:
        log.warning("recordings.transcribe is missing: voicemail is not transcribed")
        yield None
        return
    from recordings.errors import RecordingError

    try:
        pool = TranscriberPool(model_path, workers=settings.vosk.workers,
                               recycle_after=settings.vosk.recycle_after,
                               job_timeout=settings.vosk.job_timeout_s)
        await pool.start()
    except (RecordingError, OSError) as exc:
        log.error("vosk transcriber did not start (%s): voicemail is not transcribed", exc)
        yield None
        return
    try:
        yield pool
    finally:
        await pool.close()


async def build_ingest(settings: Settings, sm: async_sessionmaker[AsyncSession],
                       transcriber: Transcriber | None, triage_fn: TriageFn | None, *,
                       service: TicketService | None = None, bus: EventBus | None = None,
                       clock: Clock | None = None, spool_dir: Path | None = None
                       ) -> VoicemailIngest:
    clock = clock or SystemClock()
    service = service or TicketService(sm, bus or EventBus(), clock, timezone=settings.timezone)
    vm = settings.voicemail
    default_community_id = None
    if settings.default_community:
        async with sm() as session:
            community = await community_by_code(session, settings.default_community)
        default_community_id = community.id if community else None
    return VoicemailIngest(
        sm, spool_dir or vm.spool_dir, settings.data_dir, transcriber, triage_fn, service,
        lookup_by_number, clock, scan_interval_s=vm.scan_interval_s,
        retention_days=vm.retention_days, default_community_id=default_community_id,
        contexts=(vm.context,), mailboxes=vm.mailboxes or None,
        transcribe_timeout_s=settings.vosk.job_timeout_s + 30.0,
    )


class StaffListenNotifier:
    """The ``ticketing.listen.ListenNotifier`` port: who hears a voicemail nobody's
    software understood. In office hours (the hotline's own office-hours rules,
    ``ivr.timeconditions``) the front desk: the ``agent`` on call, else every
    active agent of the community; otherwise (night, weekend, holiday) the
    ``night_duty`` on call, the backup when the first cannot be reached. Sent
    through each person's own channels (``StaffNotifiers``, as paging and the
    screen-pop do): a notice, never a phone page."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], staff: StaffNotifiers,
                 clock: Clock, modes: TimeModes | TimeConditions, *, default_community: str | None = None) -> None:
        self._sm = sessionmaker
        self._staff = staff
        self._clock = clock
        self._modes = modes
        self._default = default_community

    async def _people(self, notice: ListenNotice) -> tuple[str, list[OnCallPerson]]:
        return await front_desk_now(self._sm, self._modes, self._clock.now(),
                                    notice.community_id or self._default)

    async def notify(self, notice: ListenNotice) -> ListenDelivery:
        audience, people = await self._people(notice)
        message = Notification(notice.title, notice.text, notice.fields,
                               key=f"listen:{notice.number}")
        # Night duty: the first who gets it; the front desk: all of them.
        reached, errors = await send_each(self._staff, people, message,
                                          first_only=audience != "前台", no_channel=True)
        return ListenDelivery(audience, reached,
                              "; ".join(errors) if errors else ("" if reached else "nobody on duty"))


async def send_each(staff: StaffNotifiers, people: list[OnCallPerson], message: Notification,
                    *, first_only: bool, no_channel: bool = False
                    ) -> tuple[tuple[str, ...], list[str]]:
    """Send ``message`` to each person through their own channels, in order (stopping at
    the first reached when ``first_only``): ``(names reached, errors)``; a person with no
    channel is an error only when ``no_channel``."""
    reached: list[str] = []
    errors: list[str] = []
    for person in people:
        notifier = staff.for_staff(person.notify)
        if notifier is None:
            if no_channel:
                errors.append(f"{person.name}: no channel")
            continue
        result = await notifier.send(message)
        if result.ok:
            reached.append(person.name)
            if first_only:
                break
        else:
            errors.append(f"{person.name}: {result.error}")
    return tuple(reached), errors


async def front_desk_now(sm: async_sessionmaker[AsyncSession],
                         modes: TimeModes | TimeConditions, now: datetime,
                         community_ref: int | str | None) -> tuple[str, list[OnCallPerson]]:
    """Who of the front desk is on duty now, and what to call them: in office hours
    the ``agent`` on call, else every active agent of the community (``前台``);
    otherwise the ``night_duty`` on call (``夜班值班人员``, chain order)."""
    async with sm() as session:
        try:
            community = await find_community(session, community_ref)
        except UnknownCommunity:
            return "夜班值班人员", []
        office = modes.mode_for(community.code, now) == Mode.OFFICE
        role, audience = ("agent", "前台") if office else ("night_duty", "夜班值班人员")
        try:
            people = list((await who_is_on_call(session, community, role, now)).people)
        except NoSchedule:
            people = []
        if not people and office:
            rows = (await session.scalars(select(StaffUser).where(
                StaffUser.role == "agent", StaffUser.active.is_(True),
                works_for(community.id)).order_by(StaffUser.id))).all()
            people = [_person(u, "agent") for u in rows]
    return audience, people


def _person(u: StaffUser, label: str) -> OnCallPerson:
    return OnCallPerson(u.id, u.display_name or u.username, label, u.extension, u.mobile,
                        dict(u.notify or {}))


class OfficeHours:
    """The ``ticketing.sla_policy.WorkingHours`` port: office time is the IVR's office
    mode (weekday hours, 调休 and holidays, per community)."""

    def __init__(self, modes: TimeModes | TimeConditions) -> None:
        self._modes = modes

    def is_working(self, community: str | None, at: datetime) -> bool:
        return self._modes.mode_for(community, at) == Mode.OFFICE


class StaffSlaNotifier:
    """The ``ticketing.sla_worker.SlaNotifier`` port: a response breach goes to the
    front desk on duty (``front_desk_now``: every agent reached in office hours, the
    first night duty reached otherwise), a red light to the assignee and the heads of
    the ticket's department, an escalation to the community's supervisors; each
    through their own channels (``StaffNotifiers``). A notice, never a phone page."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], staff: StaffNotifiers,
                 clock: Clock, modes: TimeModes | TimeConditions, *,
                 default_community: str | None = None) -> None:
        self._sm = sessionmaker
        self._staff = staff
        self._clock = clock
        self._modes = modes
        self._default = default_community

    async def _people(self, breach: SlaBreach) -> tuple[str, list[OnCallPerson], bool]:
        """``(audience, people, stop at the first reached)``."""
        if breach.kind == "response":
            audience, people = await front_desk_now(
                self._sm, self._modes, self._clock.now(), breach.community_id or self._default)
            return audience, people, audience != "前台"
        async with self._sm() as session:
            if breach.kind == "red_light":
                ids: list[int] = [breach.assignee_id] if breach.assignee_id else []
                if breach.community_id is not None:
                    ids += list((await session.scalars(
                        select(DepartmentMember.user_id).join(Department).where(
                            Department.community_id == breach.community_id,
                            Department.code == breach.department,
                            DepartmentMember.head.is_(True)).order_by(DepartmentMember.id)
                    )).all())
                ids = list(dict.fromkeys(ids))
                users = {u.id: u for u in (await session.scalars(select(StaffUser).where(
                    StaffUser.id.in_(ids), StaffUser.active.is_(True)))).all()} if ids else {}
                return "处理人和部门负责人", [_person(users[i], "assignee") for i in ids
                                         if i in users], False
            # an escalation, or a 重大投诉 (breach.major): the community's supervisors
            if breach.community_id is None:
                return "主管", [], False
            rows = (await session.scalars(select(StaffUser).where(
                StaffUser.role == "supervisor", StaffUser.active.is_(True),
                works_for(breach.community_id)).order_by(StaffUser.id))).all()
            return "主管", [_person(u, "supervisor") for u in rows], False

    async def notify(self, breach: SlaBreach) -> SlaDelivery:
        audience, people, first_only = await self._people(breach)
        message = Notification(breach.title, breach.body, breach.fields,
                               key=f"sla:{breach.number}:{breach.kind}")
        reached, errors = await send_each(self._staff, people, message, first_only=first_only)
        error = "; ".join(errors) if errors else ("" if reached else NOBODY)
        return SlaDelivery(audience, reached, error)


@asynccontextmanager
async def sla_notices(app: web.Application) -> AsyncIterator[StaffSlaNotifier]:
    """``StaffSlaNotifier`` with the staff notifiers the screen-pop built (or its own)."""
    settings = app[SETTINGS]
    http: aiohttp.ClientSession | None = None
    staff = app.get(STAFF_NOTIFIERS)
    if staff is None:
        http = aiohttp.ClientSession()
        staff = StaffNotifiers(http, app[CLOCK])
    try:
        yield StaffSlaNotifier(app[SESSIONMAKER], staff, app[CLOCK], office_hours(settings),
                               default_community=settings.default_community)
    finally:
        if http is not None:
            await http.close()


def sla_setup(settings: Settings) -> SlaSetup:
    """The SLA clock's ports: ``<data_dir>/sla.toml`` (defaults without it), the
    IVR's office hours, the staff notifiers."""
    try:
        policy = load_policy(settings.data_dir / SLA_FILE)
    except SlaPolicyError as exc:
        raise SettingsError("sla", str(exc), settings.source) from None
    return SlaSetup(policy=policy, hours=OfficeHours(office_hours(settings)),
                    notifier=sla_notices)


def office_hours(settings: Settings) -> TimeModes | TimeConditions:
    """The hotline's office-hours rules, as the IVR reads them: holidays and
    ``<data_dir>/office_hours.toml``."""
    holidays = HolidayCalendar()
    HolidayFile(holidays, settings.data_dir / HOLIDAY_FILE).reload()
    hours_file = settings.data_dir / HOURS_FILE
    if hours_file.exists():
        return load_time_conditions(hours_file, holidays, settings.timezone)
    return TimeModes(holidays, settings.timezone)


@asynccontextmanager
async def listen_notices(app: web.Application, service: TicketService
                         ) -> AsyncIterator[ListenNotices]:
    """``ListenNotices`` with the staff notifiers the screen-pop built (or its own)."""
    settings = app[SETTINGS]
    http: aiohttp.ClientSession | None = None
    staff = app.get(STAFF_NOTIFIERS)
    if staff is None:
        http = aiohttp.ClientSession()
        staff = StaffNotifiers(http, app[CLOCK])
    notifier = StaffListenNotifier(app[SESSIONMAKER], staff, app[CLOCK], office_hours(settings),
                                   default_community=settings.default_community)
    notices = ListenNotices(app[SESSIONMAKER], notifier, app[CLOCK],
                            interval_s=settings.voicemail.scan_interval_s)
    unsubscribe = app[BUS].subscribe("ticket.created", notices.on_ticket_created)
    try:
        yield notices
    finally:
        unsubscribe()
        if http is not None:
            await http.close()


@asynccontextmanager
async def unpaged_emergencies(app: web.Application, service: TicketService
                              ) -> AsyncIterator[UnpagedEmergencies]:
    unpaged = UnpagedEmergencies(app[SESSIONMAKER], service, app[CLOCK],
                                 interval_s=app[SETTINGS].voicemail.scan_interval_s)
    app[HEALTH_EXTRAS].append(unpaged.health)
    yield unpaged


def setup_tickets(app: web.Application, *, transcriber: TranscriberSource = None,
                  triage_fn: TriageFn | None = None, ingest: bool = True) -> None:
    """Call after ``create_app`` (its database context must run first).

    ``transcriber`` is the vosk pool, or a function of the app returning it at
    start-up (when the pool lives under its own AppKey and cleanup_ctx,
    registered before this one). Without one, voicemail still becomes tickets
    that say "请收听录音", and night duty or the front desk is told to listen.
    ``triage_fn`` defaults to ``ticketing.triage.triage`` with the lexicon of
    ``[triage] lexicon``. The wiring itself is ``ticketing.setup``'s."""

    async def make_ingest(app: web.Application, service: TicketService) -> VoicemailIngest:
        settings = app[SETTINGS]
        source: Any = transcriber
        pool: Transcriber | None = source(app) if callable(source) else source
        triage = triage_fn if triage_fn is not None else default_triage(settings.triage.lexicon)
        return await build_ingest(settings, app[SESSIONMAKER], pool, triage, service=service,
                                  clock=app[CLOCK])

    ticketing_setup.setup_tickets(app, ingest=make_ingest if ingest else None,
                                  watchers=(unpaged_emergencies, listen_notices),
                                  on_call=on_call_ids, sla=sla_setup(app[SETTINGS]))


async def on_call_ids(session: AsyncSession, community_id: int, role: str,
                      now: datetime) -> list[int] | None:
    """The ``ticketing.workorders.OnCallLookup`` port: who of ``role`` is on call now in
    the community (chain order), from the on-call schedules; None without a schedule."""
    try:
        answer = await who_is_on_call(session, community_id, role, now)
    except (NoSchedule, UnknownCommunity):
        return None
    return [p.user_id for p in answer.people]

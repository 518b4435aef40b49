"""The newcomer's demo: its own SQLite database, a sample community, the
built-in Asterisk stand-in and the server, on one machine, in one command."""

from __future__ import annotations

import logging
import socket
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.directory.importer import ImportReport, import_rows
from callcenter.directory.models import Person
from callcenter.directory.sample import DEMO_COMMUNITY, sample_rows
from callcenter.directory.spreadsheet import canonical_row
from callcenter.settings import (
    AsteriskSettings,
    FastAgiSettings,
    HttpSettings,
    Secret,
    Settings,
    VoicemailSettings,
)
from callcenter.simulator.scenario import Phone, Press, Wait

log = logging.getLogger(__name__)

DEMO_AMI_USER = "callcenter"
DEMO_AMI_SECRET = "demo-secret"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def demo_settings(data_dir: Path, port: int, *, ami_port: int | None = None,
                  fastagi_port: int | None = None) -> Settings:
    data_dir = data_dir.resolve()
    return Settings(
        data_dir=data_dir,
        default_community=DEMO_COMMUNITY_CODE,
        http=HttpSettings(host="127.0.0.1", port=port),
        asterisk=(
            AsteriskSettings(
                name="standin", host="127.0.0.1", port=ami_port or free_port(),
                username=DEMO_AMI_USER, secret=Secret(DEMO_AMI_SECRET), ping_interval=5.0,
                trunk="Local/{number}@phones", extension_channel="Local/{extension}@phones",
            ),
        ),
        fastagi=FastAgiSettings(host="127.0.0.1", port=fastagi_port or free_port()),
        voicemail=VoicemailSettings(spool_dir=data_dir / "spool" / "voicemail", scan_interval_s=5.0),
        source="<demo>",
    )


async def seed_directory(sm: async_sessionmaker[AsyncSession]) -> ImportReport | None:
    """Load the sample community once; an existing demo database is kept."""
    async with sm() as s:
        if (await s.scalar(select(func.count()).select_from(Person))) or 0:
            return None
    rows = ((i + 2, canonical_row(row)) for i, row in enumerate(sample_rows()))
    report = await import_rows(sm, rows)
    if report.rejected:
        raise RuntimeError(f"sample data rejected: {report.rejected[:3]}")
    return report


DEMO_COMMUNITY_CODE = "lakeside"
DEMO_PASSWORD = "demo1234"
# username, display name, role, extension, mobile
DEMO_STAFF = (
    ("agent1", "前台 小李", "agent", "8001", None),
    ("agent2", "前台 小王", "agent", "8002", None),
    ("night1", "夜班 老张", "night_duty", None, "13700000001"),
    ("night2", "夜班 老刘", "night_duty", "8102", None),
    ("eng1", "工程 陈师傅", "engineer", None, "13700000011"),
    ("eng2", "工程 赵师傅", "engineer", "8202", None),
    ("sup1", "主管 周经理", "supervisor", "8301", None),
    ("admin", "系统管理员", "admin", None, None),
)


async def seed_staff(sm: async_sessionmaker[AsyncSession], today: date) -> bool:
    """Demo users (password ``demo1234``) and on-call schedules; once."""
    from callcenter.auth.passwords import hash_password, make_hasher
    from callcenter.directory.models import Community, StaffCommunity, StaffUser
    from callcenter.directory.phones import normalize_phone
    from callcenter.oncall.services import ChainSpec, ShiftInput, create_schedule

    async with sm() as s:
        if (await s.scalar(select(func.count()).select_from(StaffUser))) or 0:
            return False
        community = (await s.scalars(select(Community).where(Community.name == DEMO_COMMUNITY))).one()
        community.code = DEMO_COMMUNITY_CODE
        hasher = make_hasher()
        users = {}
        for username, display, role, ext, mobile in DEMO_STAFF:
            user = StaffUser(username=username, display_name=display, role=role, extension=ext,
                             mobile=normalize_phone(mobile) if mobile else None,
                             memberships=[StaffCommunity(community_id=community.id)],
                             password_hash=hash_password(hasher, DEMO_PASSWORD))
            s.add(user)
            users[username] = user
        await s.commit()
        chain = (ChainSpec(0, "primary", "rotation", 0), ChainSpec(1, "backup", "rotation", 1),
                 ChainSpec(2, "supervisor", "user", user_id=users["sup1"].id))
        await create_schedule(s, community=DEMO_COMMUNITY_CODE, role="night_duty", chain=chain,
                              shifts=[ShiftInput("夜班", "18:00", "08:30",
                                                 [users["night1"].id, users["night2"].id], today)])
        await create_schedule(s, community=DEMO_COMMUNITY_CODE, role="engineer", chain=chain,
                              shifts=[ShiftInput("工程值班", "08:30", "08:30",
                                                 [users["eng1"].id, users["eng2"].id], today)])
    return True


def demo_phones() -> list[Phone]:
    """The staff's phones in the stand-in: they answer; engineers accept pages."""
    phones = [Phone(ext or mobile or "", name) for _, name, role, ext, mobile in DEMO_STAFF
              if (ext or mobile) and role != "engineer"]
    phones += [Phone(ext or mobile or "", name, answer_after=3.0, script=[Wait(8.0), Press("1")])
               for _, name, role, ext, mobile in DEMO_STAFF if role == "engineer"]
    return phones


async def demo_callers(sm: async_sessionmaker[AsyncSession], limit: int = 40) -> list[tuple[str, str]]:
    """(number, name) of some owners, so simulated calls come from known people."""
    from callcenter.directory.models import PersonPhone
    from callcenter.directory.phones import national_display

    async with sm() as s:
        rows = (await s.execute(
            select(PersonPhone.number, Person.name).join(Person).order_by(PersonPhone.id).limit(limit)
        )).all()
    return [(national_display(number), name) for number, name in rows]


def _speech_status(settings: Settings) -> str:
    from recordings.errors import ModelNotFound
    from recordings.vosk_model import model_in_data_dir

    try:
        model = settings.vosk.model_path or model_in_data_dir(settings.data_dir)
    except ModelNotFound as exc:
        return f"语音识别未启用 / voicemail not transcribed: {exc}"
    if model is None:
        dest = settings.data_dir / "models"
        return (f"留言转写需要语音模型 / voicemail transcripts need a model (42 MB): "
                f"callcenter vosk download --dest {dest}")
    return f"留言转写模型 / voicemail model: {model}"


async def run_demo(data_dir: Path, port: int, *, simulate_calls: bool = True) -> None:
    from callcenter.app import create_app
    from callcenter.db.engine import make_engine, make_sessionmaker, migrate
    from callcenter.server import serve
    from callcenter.simulator.demo import demo_standin

    settings = demo_settings(data_dir, port)
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine)
        sm = make_sessionmaker(engine)
        report = await seed_directory(sm)
        if report is not None:
            print(f"示例小区「{DEMO_COMMUNITY}」已导入：{report.imported} 位住户", flush=True)
        await seed_staff(sm, datetime.now(ZoneInfo(settings.timezone)).date())
        callers = await demo_callers(sm)
    finally:
        await engine.dispose()

    app = create_app(settings)

    speech = _speech_status(settings)

    async def started(bound: int) -> None:
        print(f"\n  物业呼叫中心演示已启动 / demo running:  http://127.0.0.1:{bound}/\n"
              f"  登录 / sign in: agent1, night1, eng1, sup1 or admin — password {DEMO_PASSWORD}\n"
              f"  前台坐席登录后点「就绪」加入队列，来电即弹屏 / agents: press ready to join the queue\n"
              f"  {speech}\n", flush=True)

    async with demo_standin(settings, callers, simulate_calls=simulate_calls, phones=demo_phones()):
        await serve(app, settings.http.host, settings.http.port, on_started=started)

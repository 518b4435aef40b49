"""`callcenter asterisk-config` configures every context and queue the server uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from callcenter.cli.main import main
from callcenter.console.ami_ports import AmiAgentStatus
from callcenter.console.ports import StaffRef
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.page_call import PAGE_CONTEXT
from callcenter.paging.worker import WorkerConfig
from callcenter.settings import settings_from_mapping
from ivr.menus import MenuStore

FILE = re.compile(r"^; ---- (\S+) \((\S+)\) ----$", re.M)
SECTION = re.compile(r"^\[([^\]]+)\]$", re.M)


def printed(tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str) -> dict[str, dict[str, str]]:
    """The printed configuration as {file: {section: body}} for the first PBX."""
    cfg = tmp_path / "cc.toml"
    cfg.write_text(toml, encoding="utf-8")
    assert main(["--config", str(cfg), "asterisk-config"]) == 0
    out = capsys.readouterr().out
    files: dict[str, dict[str, str]] = {}
    pieces = FILE.split(out)
    for name, _pbx, text in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
        sections = SECTION.split(text)
        files.setdefault(name, dict(zip(sections[1::2], sections[2::2], strict=True)))
    return files


def options(body: str) -> dict[str, str]:
    lines = [line for line in body.splitlines()
             if not line.startswith(";") and "=" in line and "=>" not in line]
    return {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in lines)}


def matches(body: str, exten: str) -> bool:
    """Whether a dialplan context has an extension pattern matching ``exten``."""
    for pattern in re.findall(r"^exten => ([^,]+),1,", body, re.M):
        if pattern == exten:
            return True
        if pattern.startswith("_"):
            rx = "".join({"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]", ".": ".+", "!": ".*"}.get(c, re.escape(c))
                         for c in pattern[1:])
            if re.fullmatch(rx, exten):
                return True
    return False


class Recorder:
    """An AMI link that records what the server sends."""

    name = "pbx1"

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.originates: list[dict[str, Any]] = []

    async def send_action(self, headers: list[tuple[str, str]]) -> None:
        self.actions.append(dict(headers))

    async def originate(self, **kwargs: Any) -> None:
        self.originates.append(kwargs)


class Links:
    def __init__(self, link: Recorder) -> None:
        self.link = link

    def get(self, name: str) -> Recorder:
        return self.link

    def for_community(self, community: str | None) -> Recorder:
        return self.link


TOML = """
[[asterisk]]
name = "pbx1"
username = "cc"
hotline_context = "wuye-hotline"
extension_channel = "SIP/{extension}"
"""


async def test_every_context_and_queue_the_server_uses_is_configured(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = printed(tmp_path, capsys, TOML)
    settings = settings_from_mapping({"asterisk": [{"name": "pbx1", "username": "cc",
                                                    "hotline_context": "wuye-hotline",
                                                    "extension_channel": "SIP/{extension}"}]})
    dialplan, queues = files["extensions.conf"], files["queues.conf"]

    # What the console sends when an agent says "ready" (QueueAdd, then QueuePause).
    link = Recorder()
    agent = StaffRef(user_id=1, username="xiaoli", display_name="小李", role="agent",
                     extension="1001", mobile=None)
    await AmiAgentStatus(Links(link), settings.asterisk).set_status(  # type: ignore[arg-type]
        agent, "ready", "")
    add, pause = link.actions
    assert add["Action"] == "QueueAdd" and pause["Action"] == "QueuePause"
    assert add["MemberName"] == "小李"
    interface = add["Interface"]  # Local/1001@agents/n
    member = re.fullmatch(r"Local/(\w+)@([\w-]+)/n", interface)
    assert member, interface
    exten, context = member.groups()
    assert context in dialplan and matches(dialplan[context], exten)
    # The member context rings the agent's phone the way the settings say.
    assert "Dial(SIP/${EXTEN})" in dialplan[context]
    assert add["Queue"] in queues and pause["Queue"] == add["Queue"]

    # What paging sends: Originate into the paging context with the incident as exten.
    worker = WorkerConfig()  # what setup_paging builds, with the PBX's trunk
    await AmiOriginator(link).originate(  # type: ignore[arg-type]
        "SIP/1001", worker.context, worker.exten.format(incident_id=42, attempt_id=7), {}, 30)
    sent = link.originates[0]
    assert sent["context"] == PAGE_CONTEXT
    assert sent["context"] in dialplan and matches(dialplan[sent["context"]], sent["exten"])
    assert "AGI(agi:async)" in dialplan[sent["context"]]

    # The hotline contexts the DIDs are routed to, over both transports.
    for hotline in ("wuye-hotline", "wuye-hotline-fastagi"):
        assert matches(dialplan[hotline], "075588886666")

    # Every queue a shipped menu sends callers to exists, set up for a front desk.
    menu_queues = {a.arg("queue") for m in MenuStore().current().menus.values()
                   for a in [m.fallback, *m.options.values()] if a.kind == "queue"}
    assert menu_queues and menu_queues <= set(queues)
    for name in menu_queues | {add["Queue"]}:
        opts = options(queues[name])
        assert opts["strategy"] == "ringall" and int(opts["timeout"]) > 0
        assert {"retry", "wrapuptime", "joinempty", "leavewhenempty"} <= set(opts)
        assert "member =>" not in queues[name]  # members are the server's (QueueAdd/QueueRemove)


def test_a_menus_own_queue_is_configured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ivr.menus import DEFAULT_MENUS

    menus = tmp_path / "menus.toml"
    menus.write_text(DEFAULT_MENUS.read_text(encoding="utf-8").replace(
        '"2" = { label = "投诉", action = "queue", queue = "frontdesk" }',
        '"2" = { label = "投诉", action = "queue", queue = "complaints" }'), encoding="utf-8")
    assert "complaints" in menus.read_text(encoding="utf-8")
    files = printed(tmp_path, capsys, f'ivr_menus = ["{menus}"]\n')
    assert {"frontdesk", "complaints"} <= set(files["queues.conf"])

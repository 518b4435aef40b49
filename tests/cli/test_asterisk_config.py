"""`callcenter asterisk-config` configures every context and queue the server uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from callcenter.ami.event_classes import EVENT_CLASSES
from callcenter.cli.main import main
from callcenter.console.ami_ports import AmiAgentStatus
from callcenter.console.ports import StaffRef
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.page_call import PAGE_CONTEXT
from callcenter.paging.worker import WorkerConfig
from callcenter.settings import settings_from_mapping
from callcenter.simulator.dialplan import extension_matches
from ivr.menus import MenuStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"
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
    """Whether a dialplan context has an extension that ``exten`` finds."""
    return any(extension_matches(pattern, exten)
               for pattern in re.findall(r"^exten => ([^,]+),1,", body, re.M))


def test_the_pattern_matcher_behaves_as_asterisk() -> None:
    """Capture 10: ``Local/1@sip-unused``, where only ``_X.`` is defined, does not
    exist on a real Asterisk 20; ``_X!`` is Asterisk's zero-or-more."""
    assert not extension_matches("_X.", "1") and extension_matches("_X.", "12")
    assert extension_matches("_X!", "1") and extension_matches("_X!", "12345")
    assert not extension_matches("_X!", "") and not extension_matches("_X!", "h")
    assert extension_matches("_1[0-2]X", "112") and not extension_matches("_1[0-2]X", "132")
    assert extension_matches("_NXX", "200") and not extension_matches("_NXX", "100")
    assert not extension_matches("_XX", "123") and extension_matches("8000", "8000")
    capture = (FIXTURES / "extensions.conf").read_text(encoding="utf-8")
    assert "[sip-unused]\nexten => _X.," in capture.replace("\r", "")


class Recorder:
    """An AMI link that records what the server sends."""

    name = "pbx1"

    def __init__(self) -> None:
        self.actions: list[dict[str, str]] = []
        self.originates: list[dict[str, Any]] = []

    async def send_action(self, headers: list[tuple[str, str]], *,
                          on_request: bool = False) -> None:
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
    await AmiOriginator(link).originate(
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


def originate_failed(capture: str, action_id: str) -> bool:
    """Whether the capture's OriginateResponse for ``action_id`` says Failure."""
    text = capture.replace("\r", "")
    for block in text.split("\n\n"):
        if "Event: OriginateResponse" in block and f"ActionID: {action_id}\n" in block + "\n":
            return "Response: Failure" in block
    raise AssertionError(f"no OriginateResponse for {action_id}")


def test_a_real_asterisk_has_no_one_digit_extension_under_x_dot() -> None:
    """Capture 10: Originate to ``Local/1@sip-unused`` (only ``_X.`` there) fails
    on Asterisk 20, which is what the matcher above says too."""
    capture = (FIXTURES / "10_originate_missing_exten.txt").read_text(encoding="utf-8")
    assert "Channel: Local/1@sip-unused" in capture and originate_failed(capture, "c10-2")
    assert not extension_matches("_X.", "1")


TOML_SITE = TOML + """
[voicemail]
context = "wuye"
mailboxes = ["8000", "8"]
"""


@pytest.mark.parametrize("incident_id", [1, 9, 10, 12345])
def test_every_incident_can_be_paged(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     incident_id: int) -> None:
    """Paging originates into the page context with the incident id as the
    extension: incidents 1-9 were ``Extension does not exist`` under ``_X.``."""
    dialplan = printed(tmp_path, capsys, TOML)["extensions.conf"]
    worker = WorkerConfig()
    exten = worker.exten.format(incident_id=incident_id, attempt_id=3)
    assert exten == str(incident_id)
    assert matches(dialplan[worker.context], exten)
    assert not matches(dialplan[worker.context], "h")  # the hang-up extension is not a page


def test_a_one_digit_agent_extension_and_mailbox_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from callcenter.asterisk_config import member_context
    from callcenter.console.ami_ports import DEFAULT_MEMBER_INTERFACE

    files = printed(tmp_path, capsys, TOML_SITE)
    dialplan = files["extensions.conf"]
    member = re.fullmatch(r"Local/(\w+)@([\w-]+)/n", DEFAULT_MEMBER_INTERFACE.format(extension="8"))
    assert member and member.group(2) == member_context()
    for ext in ("8", "1001"):
        assert matches(dialplan[member_context()], ext), ext
    for box in ("8", "8000"):
        assert matches(dialplan["callcenter-voicemail"], box), box
    assert "VoiceMail(${EXTEN}@wuye,s)" in dialplan["callcenter-voicemail"]


# Each event the server handles → its manager class: callcenter/ami/event_classes.py
# (checked against the captures' Privilege headers in tests/ami/test_event_classes.py).
def handled_events() -> set[str]:
    from callcenter.ami.asyncagi import ASYNCAGI_EVENTS
    from callcenter.calls.tracker import CallTracker

    tracker = CallTracker("pbx1", lambda event: None)
    return {*tracker._handlers, *ASYNCAGI_EVENTS,
            "FullyBooted", "Shutdown", "OriginateResponse"}  # ami/client.py


def test_read_classes_are_exactly_those_of_the_events_the_server_handles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = EVENT_CLASSES
    assert table["Newexten"] == "dialplan" and table["AsyncAGIStart"] == "agi"
    handled = handled_events()
    assert handled <= set(table), sorted(handled - set(table))
    needed = {table[e] for e in handled}
    user = options(printed(tmp_path, capsys, TOML)["manager.conf"]["cc"])
    read = set(user["read"].split(","))
    assert read == needed, (sorted(read - needed), sorted(needed - read))


def test_the_old_read_classes_lose_newexten() -> None:
    """Capture 12: a user with the classes printed before received every event
    of a hotline call but Newexten and VarSet, which the tracker needs to see a
    caller enter VoiceMail()."""
    header = (FIXTURES / "12_read_permissions.txt").read_text(encoding="utf-8").splitlines()[:10]
    assert "# only rigall got: Newexten, VarSet" in header
    assert "Newexten" in handled_events()


def test_voicemail_conf_has_every_mailbox_the_ingest_watches(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    voicemail = printed(tmp_path, capsys, TOML_SITE)["voicemail.conf"]
    assert set(voicemail) == {"wuye"}  # no [general]: the site's own stays in charge
    boxes = {}
    for line in voicemail["wuye"].splitlines():
        if "=>" in line and not line.startswith(";"):
            box, _, rest = (x.strip() for x in line.partition("=>"))
            boxes[box] = rest.split(",")
    assert set(boxes) == {"8000", "8"}
    for pin, name, email, pager, opts in boxes.values():
        assert pin.isdigit() and len(pin) == 8 and name.startswith("报修留言")
        assert email == pager == ""
        flags = dict(o.split("=") for o in opts.split("|"))
        assert flags["attach"] == "no"
        assert int(flags["maxmsg"]) > 100  # app_voicemail's default would fill after 100 calls
    # The same PIN each run, different per mailbox.
    again = printed(tmp_path, capsys, TOML_SITE)["voicemail.conf"]["wuye"]
    assert again == voicemail["wuye"] and boxes["8"][0] != boxes["8000"][0]


def test_no_file_redefines_general(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for name, sections in printed(tmp_path, capsys, TOML_SITE).items():
        assert "general" not in sections, name


def test_write_makes_the_include_files_and_keeps_foreign_ones(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cc.toml"
    cfg.write_text(TOML_SITE.replace('username = "cc"', 'username = "cc"\nsecret = "s3cret"'),
                   encoding="utf-8")
    out = tmp_path / "asterisk" / "callcenter"
    assert main(["--config", str(cfg), "asterisk-config", "--write", str(out)]) == 0
    said = capsys.readouterr().out
    names = ["manager_callcenter.conf", "extensions_callcenter.conf", "queues_callcenter.conf",
             "voicemail_callcenter.conf"]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names:
        includer = name.replace("_callcenter", "")
        assert f"{includer}: #include {out / name}" in said
    assert main(["--config", str(cfg), "asterisk-config"]) == 0
    whole = capsys.readouterr().out
    for name in names:  # each file is the printed piece
        body = (out / name).read_text(encoding="utf-8").split("\n", 1)[1]
        assert body in whole
    manager = out / "manager_callcenter.conf"
    assert "secret = s3cret" in manager.read_text(encoding="utf-8")
    assert manager.stat().st_mode & 0o077 == 0o040  # not world-readable: it holds the secret

    # Run again: its own files are replaced.
    assert main(["--config", str(cfg), "asterisk-config", "--write", str(out)]) == 0
    capsys.readouterr()
    # A file the site wrote is not overwritten, and nothing else is written either.
    (out / "queues_callcenter.conf").write_text("[mine]\nstrategy = linear\n", encoding="utf-8")
    (out / "extensions_callcenter.conf").unlink()
    assert main(["--config", str(cfg), "asterisk-config", "--write", str(out)]) == 1
    err = capsys.readouterr().err
    assert "queues_callcenter.conf" in err and "--force" in err
    assert (out / "queues_callcenter.conf").read_text(encoding="utf-8").startswith("[mine]")
    assert not (out / "extensions_callcenter.conf").exists()
    assert main(["--config", str(cfg), "asterisk-config", "--write", str(out), "--force"]) == 0
    assert "[frontdesk]" in (out / "queues_callcenter.conf").read_text(encoding="utf-8")


def test_write_names_includes_relative_to_the_asterisk_folder(tmp_path: Path) -> None:
    from callcenter.asterisk_config import write_files

    etc = tmp_path / "etc-asterisk"
    lines = write_files(settings_from_mapping({}), etc / "callcenter", asterisk_dir=etc)
    assert "extensions.conf: #include callcenter/extensions_callcenter.conf" in lines


def test_several_asterisks_get_a_folder_each(tmp_path: Path) -> None:
    from callcenter.asterisk_config import write_files

    settings = settings_from_mapping({"asterisk": [{"name": "north", "community": "n"},
                                                  {"name": "south", "community": "s"}]})
    lines = write_files(settings, tmp_path)
    assert (tmp_path / "north" / "manager_callcenter.conf").exists()
    assert (tmp_path / "south" / "voicemail_callcenter.conf").exists()
    assert len(lines) == 8

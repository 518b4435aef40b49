"""Menu files are validated on load: each error names the file, the menu and the key."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from ivr.errors import MenuError
from ivr.menus import DEFAULT_MENUS, MenuStore, load_menus, parse_menus


def _sample() -> dict[str, Any]:
    with open(DEFAULT_MENUS, "rb") as fh:
        return tomllib.load(fh)


def test_the_shipped_menus_are_valid() -> None:
    menus = load_menus(DEFAULT_MENUS)
    assert set(menus.entry) == {"office", "night", "weekend", "holiday"}
    assert menus.menus["main_office"].options["1"].kind == "menu"


def _break(mutate: Any) -> str:
    data = _sample()
    mutate(data)
    with pytest.raises(MenuError) as info:
        parse_menus(data, "menus.toml")
    return str(info.value)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["menus"]["repair"].update(prompts=["no-such-prompt"]),
     "menus.toml: menu 'repair': prompts: unknown prompt 'no-such-prompt'"),
    (lambda d: d["menus"]["repair"].pop("fallback"), "menu 'repair': fallback: missing fallback"),
    (lambda d: d["menus"]["repair"]["options"].update({"12": {"action": "hangup"}}),
     "menu 'repair': options.12: an option key is one key"),
    (lambda d: d["menus"]["repair"]["options"].update({"5": {"action": "queue"}}),
     "menu 'repair': options.5: action 'queue' needs a non-empty 'queue'"),
    (lambda d: d["menus"]["repair"]["options"].update({"5": {"action": "fly"}}),
     "menu 'repair': options.5: unknown action 'fly'"),
    (lambda d: d["menus"]["repair"]["options"].update(
        {"5": {"action": "route_oncall", "role": "plumber"}}),
     "options.5: role must be one of"),
    (lambda d: d["menus"]["repair"]["options"].update(
        {"5": {"action": "voicemail", "mailbox": "abc"}}), "'abc' is not a mailbox"),
    (lambda d: d["menus"]["repair"]["options"].update(
        {"5": {"action": "menu", "menu": "nowhere"}}), "sub-menu 'nowhere' is not defined"),
    (lambda d: d["menus"].update(orphan=dict(d["menus"]["repair"])),
     "menu 'orphan': orphan: unreachable"),
    (lambda d: d["entry"].update(holiday="missing"), "[entry]: holiday: entry menu 'missing'"),
    (lambda d: d["safe_fallback"].pop("night"), "[safe_fallback]: night: missing fallback"),
])
def test_each_kind_of_mistake_is_named(mutate: Any, expected: str) -> None:
    assert expected in _break(mutate)


def test_a_digit_used_twice_names_the_file_menu_and_key(tmp_path: Path) -> None:
    text = DEFAULT_MENUS.read_text(encoding="utf-8").replace(
        '"2" = { label = "投诉"', '"1" = { label = "投诉"')
    path = tmp_path / "dup.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MenuError) as info:
        load_menus(path)
    assert str(info.value).startswith(f"{path}: menu 'main_office': options.1: given twice")


def test_a_digit_used_twice_in_an_inline_options_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "inline.toml"
    path.write_text('[prompts]\nhi = "你好"\n[menus.top]\nprompts = ["hi"]\n'
                    'options = { 1 = { action = "hangup" }, "1" = { action = "hangup" } }\n',
                    encoding="utf-8")
    with pytest.raises(MenuError, match=r"inline.toml: menu 'top': options: given twice.*line 5"):
        load_menus(path)


def test_a_syntax_error_names_the_menu_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('[menus.repair]\nlabel = "报修"\ntimeout_s = \n', encoding="utf-8")
    with pytest.raises(MenuError, match=r"broken.toml: menu 'repair': timeout_s: not valid TOML.*line 3"):
        load_menus(path)


def test_a_missing_or_non_utf8_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(MenuError, match="nowhere.toml: cannot read"):
        load_menus(tmp_path / "nowhere.toml")
    latin = tmp_path / "latin1.toml"
    latin.write_bytes("[prompts]\nhi = \"caf\xe9\"\n".encode("latin-1"))
    with pytest.raises(MenuError, match="latin1.toml: not UTF-8"):
        load_menus(latin)


def test_each_time_mode_has_its_own_top_menu() -> None:
    menus = load_menus(DEFAULT_MENUS)
    tops = [menus.entry[mode] for mode in ("office", "night", "weekend", "holiday")]
    assert len(set(tops)) == 4
    # Each top menu keeps a way to a person and to the emergency line.
    for name in tops:
        kinds = {a.kind for a in menus.menus[name].options.values()}
        assert "emergency" in kinds and kinds & {"queue", "route_oncall"}


def test_reload_swaps_atomically_and_keeps_the_old_menus_on_error(tmp_path: Path) -> None:
    path = tmp_path / "menus.toml"
    text = DEFAULT_MENUS.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    store = MenuStore(path)
    first = store.current()
    path.write_text(text.replace('label = "投诉"', 'label = "投诉建议"'), encoding="utf-8")
    second = store.reload()
    assert second.version == first.version + 1
    assert first.menus["main_office"].options["2"].label == "投诉"  # a running call keeps its copy
    assert second.menus["main_office"].options["2"].label == "投诉建议"
    path.write_text("[menus\n", encoding="utf-8")
    with pytest.raises(MenuError):
        store.reload()
    assert store.current() is second


def _with_community(tmp_path: Path, name: str, community: str | None, label: str) -> Path:
    text = DEFAULT_MENUS.read_text(encoding="utf-8").replace('label = "水电"', f'label = "{label}"')
    if community is not None:
        text = f'community = "{community}"\n' + text
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_community_runs_its_own_menus_and_the_others_the_shared_ones(tmp_path: Path) -> None:
    shared = _with_community(tmp_path, "shared.toml", None, "水电")
    own = _with_community(tmp_path, "binjiang.toml", "binjiang", "水电（滨江）")
    store = MenuStore(shared, own)
    assert store.current("binjiang").menus["repair"].options["1"].label == "水电（滨江）"
    assert store.current("binjiang").community == "binjiang"
    assert store.current("hupan").menus["repair"].options["1"].label == "水电"
    assert store.current(None).source == str(shared)
    before = store.current("binjiang")
    own.write_text(own.read_text(encoding="utf-8").replace("水电（滨江）", "水电维修"),
                   encoding="utf-8")
    store.reload()
    assert store.current("binjiang").menus["repair"].options["1"].label == "水电维修"
    assert store.current("binjiang").version == store.current().version == 2
    assert before.menus["repair"].options["1"].label == "水电（滨江）"  # a call in progress


def test_a_broken_community_file_keeps_every_menu_in_force(tmp_path: Path) -> None:
    shared = _with_community(tmp_path, "shared.toml", None, "水电")
    own = _with_community(tmp_path, "binjiang.toml", "binjiang", "水电（滨江）")
    store = MenuStore(shared, own)
    store.current()
    shared.write_text(shared.read_text(encoding="utf-8").replace("水电", "水电二"),
                      encoding="utf-8")
    own.write_text("community = 42\n" + own.read_text(encoding="utf-8").split("\n", 1)[1],
                   encoding="utf-8")
    with pytest.raises(MenuError, match=r"binjiang\.toml: top level: community"):
        store.reload()
    assert store.current().menus["repair"].options["1"].label == "水电"  # the shared one too
    assert store.current().version == 1


def test_two_files_for_one_community_are_refused(tmp_path: Path) -> None:
    a = _with_community(tmp_path, "a.toml", "binjiang", "甲")
    b = _with_community(tmp_path, "b.toml", "binjiang", "乙")
    with pytest.raises(MenuError, match=r"b\.toml: community: community 'binjiang' already"):
        MenuStore(a, b).current()
    # Without a shared file the first one serves every other community.
    store = MenuStore(a)
    assert store.current("hupan").community == "binjiang"


def test_a_menu_may_play_the_outage_notices_prompts_without_declaring_them() -> None:
    """outage-generic and the notices' own (outage/...) are rendered by the notices:
    a menu lists them as it lists its own; an unknown name is still refused."""
    data = _sample()
    data["menus"]["main_office"]["prompts"] = ["outage-generic", "main-office"]
    data["menus"]["repair"]["options"]["4"]["prompt"] = "outage/notice-3"
    menus = parse_menus(data, "menus.toml")
    assert menus.menus["main_office"].prompts == ("outage-generic", "main-office")
    assert "outage-generic" not in menus.prompts
    data["menus"]["main_office"]["prompts"] = ["outage-typo"]
    with pytest.raises(MenuError, match="outage-typo"):
        parse_menus(data, "menus.toml")

"""The IVR's hint: one ASCII line in VM_CATEGORY (its use by the ingest: test_ingest.py)."""

from __future__ import annotations

from recordings.ivr_hint import MAX_LENGTH, IvrHint, encode_hint, parse_hint


def test_hint_round_trips_chinese_labels_in_one_ascii_line() -> None:
    hint = IvrHint(call_id="1763800000.42", room_id=1201, path=("报修", "门窗门禁"))
    value = encode_hint(hint)
    assert value.isascii() and "\n" not in value and ";" not in value.split("path=")[1]
    assert value.startswith("cc1;call=1763800000.42;room=1201;path=")
    assert parse_hint(value) == hint


def test_a_long_path_loses_its_first_steps_not_its_last() -> None:
    path = tuple(f"第{i}层菜单" for i in range(40))
    value = encode_hint(IvrHint(call_id="c", path=path))
    assert len(value) <= MAX_LENGTH
    parsed = parse_hint(value)
    assert parsed is not None and parsed.path == path[-len(parsed.path):]
    assert parsed.path[-1] == "第39层菜单"


def test_categories_that_are_not_ours_are_ignored() -> None:
    assert parse_hint("") is None
    assert parse_hint("urgent") is None  # a site's own use of VM_CATEGORY
    assert parse_hint("cc1;room=abc;path=") == IvrHint(call_id="", room_id=None, path=())

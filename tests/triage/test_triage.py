"""Triage meets its targets on the labelled set and on a held-out set written
before the rules were tuned; numerals and locations are read both ways."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from callcenter.cli.main import main
from ticketing.triage import triage
from ticketing.triage.location import extract_location
from ticketing.triage.numerals import to_number

FIXTURES = Path(__file__).parent.parent / "fixtures" / "triage"


@pytest.mark.parametrize("name", ["dev.jsonl", "holdout.jsonl"])
def test_targets(name: str) -> None:
    rows = [json.loads(line) for line in (FIXTURES / name).read_text(encoding="utf-8").splitlines()]
    tp = fp = fn = 0
    correct = dict.fromkeys(("category", "building", "unit", "room"), 0)
    for row in rows:
        got, want = triage(row["text"]).to_dict(), row["expect"]
        tp += got["emergency"] and want["emergency"]
        fp += got["emergency"] and not want["emergency"]
        fn += want["emergency"] and not got["emergency"]
        for key in correct:
            correct[key] += got[key] == want[key]
    assert fn == 0, "every emergency must be found"
    assert tp / (tp + fp) >= 0.9
    for key, n in correct.items():
        assert n / len(rows) >= 0.95, (key, n, len(rows))


@pytest.mark.parametrize(("text", "number"), [
    ("一二零一", "1201"), ("幺零零二", "1002"), ("两", "2"), ("十五", "15"), ("二十一", "21"),
    ("一百零二", "102"), ("十", "10"), ("1708", "1708"), ("07", "7"),
])
def test_numerals(text: str, number: str) -> None:
    assert to_number(text) == number


@pytest.mark.parametrize(("text", "where"), [
    ("二期五栋一单元三零二", ("5", "1", "302")),     # a phase is not a building
    ("住在五楼", (None, None, None)),                # a floor alone is not a room
    ("一到三单元都停水了", (None, None, None)),       # a range of units gives no unit
    ("B座1708室", ("B", None, "1708")),
    ("早上七点就开始吵我是六栋四零三", ("6", None, "403")),
    ("十二栋二单元十二零三", ("12", "2", "1203")),
    ("两号楼三单元一二零八楼上漏水", ("2", "3", "1208")),
])
def test_locations(text: str, where: tuple[str | None, ...]) -> None:
    loc = extract_location(text)
    assert (loc.building, loc.unit, loc.room) == where


@pytest.mark.parametrize(("text", "emergency"), [
    ("我家燃气表好像坏了 没有 闻到 味道", False),
    ("没看到烟 就是有点响", False),
    ("楼道里有一股很浓的煤气味", True),
    ("不着急 水龙头有点滴水 有空来看看", False),
    ("上次 漏水 已经 修好 了 这次 想 问 一下 物业费", False),
])
def test_negation_and_old_problems(text: str, emergency: bool) -> None:
    assert triage(text).emergency is emergency


def test_an_old_solved_problem_does_not_decide_the_category() -> None:
    assert triage("上次 报修 的 水管 已经 修好 了 这次 是 想 问 一下 停车费 怎么 续费").category == "fees"


def test_cli_single_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "三 栋 二 单元 一 二 零 一 水管 爆 了"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"category": "plumbing", "emergency": True, "building": "3", "unit": "2",
                   "room": "1201"}


def test_cli_jsonl_keeps_order_and_reports_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = ['{"id": "a", "text": "电梯 里 有人 被困 了 十二 栋"}', "{broken", '{"id": "c"}',
             '{"id": "d", "text": "小区 路灯 坏 了"}']
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["triage", "--jsonl", "-"]) == 1
    captured = capsys.readouterr()
    out = [json.loads(line) for line in captured.out.splitlines()]
    assert [o["id"] for o in out] == ["a", None, "c", "d"]
    assert out[0]["category"] == "elevator" and out[0]["emergency"] is True and out[0]["building"] == "12"
    assert "error" in out[1] and "error" in out[2]
    assert out[3]["category"] == "public_facility"
    assert "line 2:" in captured.err and "line 3: no text" in captured.err

"""`callcenter department list|set`: the seeded defaults, people and heads, bad input."""

from __future__ import annotations

import json
from typing import Any

from tests.cli.test_community import cli

__all__ = ["cli"]


def test_list_seeds_defaults_and_set_changes_people_and_heads(cli: Any) -> None:
    assert cli("community", "add", "hupan", "--name", "湖畔花园")[0] == 0
    for name, shown in (("chen", "陈师傅"), ("zhou", "周工")):
        code, _, err = cli("user", "add", name, "--role", "engineer", "--display-name", shown,
                           "--password", "pw-123456789")
        assert code == 0, err
    code, out, _ = cli("department", "list", "hupan", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["code"], r["name"], r["oncall_role"]) for r in rows] == [
        ("engineering", "工程部", "engineer"), ("cleaning", "保洁部", None),
        ("security", "秩序部", "night_duty"), ("customer_service", "客服部", "agent"),
        ("greening", "绿化部", None)]
    code, out, err = cli("department", "set", "hupan", "engineering", "--name", "工程维修部",
                         "--member", "chen", "--member", "zhou:head")
    assert code == 0, err
    assert "工程维修部，值班表 engineer\t陈师傅、周工（负责人）" in out
    code, out, _ = cli("department", "list", "hupan")
    assert "greening\t绿化部\t（无人员）" in out
    for argv, message in ((("--member", "nobody"), "用户 nobody 不存在"),
                          (("--member", "chen:boss"), "USERNAME:head")):
        code, _, err = cli("department", "set", "hupan", "engineering", "--name", "工程部",
                           *argv)
        assert code == 1 and message in err
    code, _, err = cli("department", "set", "hupan", "Bad Code", "--name", "x")
    assert code == 1 and "部门编码" in err
    code, _, err = cli("department", "list", "nowhere")
    assert code == 1 and "小区 nowhere 不存在" in err

"""The stand-in's dialplan: what exists, by Asterisk's pattern rules, read from
extensions.conf text (the capture rig's and what ``callcenter asterisk-config``
prints)."""

from __future__ import annotations

from pathlib import Path

from callcenter.settings import settings_from_mapping
from callcenter.simulator.dialplan import (
    Dialplan,
    extension_matches,
    printed_dialplan,
    standin_dialplan,
)
from callcenter.simulator.manager_conf import parse_manager_conf

FIXTURES = Path(__file__).parents[1] / "fixtures" / "asterisk"


def test_patterns_and_literals_as_asterisk_matches_them() -> None:
    assert not extension_matches("_X.", "1") and extension_matches("_X.", "12")
    assert extension_matches("_X!", "1") and not extension_matches("_X!", "")
    assert extension_matches("_1-2[0-2]X", "1-212") and not extension_matches("_1[0-2]X", "132")
    # s, i, t and h are extensions like any other: only where written (or under _.)
    for special in ("s", "i", "t", "h"):
        assert not extension_matches("_X.", special) and not extension_matches("_X!", special)
        assert extension_matches(special, special) and extension_matches("_.", special)
    assert not extension_matches("_[12", "1")  # a broken set matches nothing
    assert extension_matches("_X./100", "12")  # a caller-id match is not part of the extension


def test_the_capture_rigs_contexts_are_parsed() -> None:
    plan = Dialplan.parse((FIXTURES / "extensions.conf").read_text(encoding="utf-8"))
    assert not plan.has_context("general") and not plan.has_context("globals")
    assert plan.contexts["hotline"].extensions == ["s", "_X."]
    assert plan.contexts["caller-sim"].extensions == ["s", "vm", "wait"]
    assert not plan.exists("sip-unused", "1") and plan.exists("sip-unused", "12")
    assert not plan.exists("no-such-context", "999")
    # the stand-in's own rig dialplan has every extension of the rig's file
    ours = standin_dialplan()
    for name, ctx in plan.contexts.items():
        assert set(ctx.extensions) <= set(ours.contexts[name].extensions), name


def test_includes_labels_and_the_invalid_extension() -> None:
    plan = Dialplan.parse("""
[a]
include => b
exten => 100,1(start),NoOp() ; a label on priority 1
 same => n,Hangup()
exten => 200,n,NoOp()  ; no priority 1: does not exist
exten => 300,hint,PJSIP/300
[b]
exten => _9X,1,NoOp()
include => a
[c]
exten => i,1,Playback(invalid)
""")
    assert plan.exists("a", "100") and plan.exists("a", "95")  # through the include (and no loop)
    assert not plan.exists("a", "200") and not plan.exists("a", "300")
    assert plan.entry("c", "5") == "i" and plan.entry("a", "5") is None and plan.entry("a", "100") == "100"


def test_the_printed_dialplan_has_every_target_the_server_originates_into() -> None:
    settings = settings_from_mapping({"voicemail": {"context": "wuye", "mailboxes": ["8000", "8"]}})
    plan = standin_dialplan(settings)
    pbx_text = printed_dialplan(settings)
    assert "[callcenter-page]" in pbx_text
    for incident in ("1", "9", "10", "12345"):
        assert plan.exists("callcenter-page", incident)
    assert not plan.exists("callcenter-page", "h")
    assert plan.exists("agents", "8") and plan.exists("callcenter-voicemail", "8")
    assert plan.exists("callcenter-hotline", "4008001234")
    # the hotline takes the DID under _X.: a bare "s" is not there on a real Asterisk
    assert not Dialplan.parse(pbx_text).exists("callcenter-hotline", "s")


def test_manager_conf_users_and_their_read_classes() -> None:
    from callcenter.asterisk_config import manager_conf
    from callcenter.settings import AsteriskSettings

    users = parse_manager_conf(manager_conf(AsteriskSettings()) + "\n[general]\nenabled = yes\n"
                               "[two]\nsecret=x\nread = call\nread = agent\n")
    assert set(users) == {AsteriskSettings().username, "two"}
    printed = users[AsteriskSettings().username].read_classes
    assert printed is not None and {"call", "agent", "agi", "system", "dialplan"} <= printed
    assert users["two"].read_classes == {"call", "agent"}

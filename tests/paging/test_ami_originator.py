"""The AMI originator against a scripted AMI server over a real socket."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable

import pytest

from callcenter.ami.client import AmiLink
from callcenter.ami.parser import Frame, encode_frame
from callcenter.paging.ami_originator import AmiOriginator
from callcenter.paging.originate import OriginateStatus
from tests.ami.fakeami import FakeAmi, FakeSettings


@pytest.fixture
async def ami() -> AsyncIterator[FakeAmi]:
    server = FakeAmi()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def link(ami: FakeAmi) -> AsyncIterator[AmiLink]:
    lk = AmiLink(FakeSettings(port=ami.port), rng=random.Random(7), reconnect_base_s=0.01)
    lk.start()
    await lk.wait_connected(2)
    yield lk
    await lk.stop()


def scripted(outcomes: list[tuple[str, str]]) -> Callable[[Frame], list[bytes]]:
    def originate(f: Frame) -> list[bytes]:
        response, reason = outcomes.pop(0)
        aid = f["ActionID"]
        return [
            encode_frame([("Response", "Success"), ("ActionID", aid),
                          ("Message", "Originate successfully queued")]),
            encode_frame([("Event", "OriginateResponse"), ("ActionID", aid),
                          ("Response", response), ("Channel", f["Channel"] or ""),
                          ("Reason", reason), ("Uniqueid", "u1")]),
        ]
    return originate


async def test_outcomes_map_from_originate_response(link: AmiLink, ami: FakeAmi) -> None:
    ami.handlers["originate"] = scripted([("Success", "4"), ("Failure", "3"),
                                          ("Failure", "5"), ("Failure", "8"), ("Failure", "0")])
    orig = AmiOriginator(link)
    got = []
    for _ in range(5):
        out = await orig.originate("PJSIP/13800000001@trunk", "callcenter-page", "s",
                                   {"CC_INCIDENT": "7", "CC_PAGE_ATTEMPT": "12"}, 25)
        got.append((out.status, out.reason))
    assert got == [(OriginateStatus.ANSWERED, "4"), (OriginateStatus.NO_ANSWER, "3"),
                   (OriginateStatus.BUSY, "5"), (OriginateStatus.FAILED, "8"),
                   (OriginateStatus.FAILED, "0")]
    sent = ami.actions("Originate")[0]
    assert sent.get("Async") == "true" and sent.get("Timeout") == "25000"
    assert sent.get("Context") == "callcenter-page" and sent.get("Exten") == "s"
    assert sent.getall("Variable") == ["CC_INCIDENT=7", "CC_PAGE_ATTEMPT=12"]


async def test_refused_originate_fails_but_an_unavailable_pbx_is_not_a_no_answer(
        link: AmiLink, ami: FakeAmi) -> None:
    message = "Extension does not exist."

    def refuse(f: Frame) -> list[bytes]:
        return [encode_frame([("Response", "Error"), ("ActionID", f["ActionID"]),
                              ("Message", message)])]

    ami.handlers["originate"] = refuse
    out = await AmiOriginator(lambda: link).originate("PJSIP/x", "c", "s", {}, 10)
    assert out.status is OriginateStatus.FAILED and out.reason == "ami_action_error"
    # capture 11: during `core restart now` every action is refused so
    message = "Asterisk is shutting down"
    out = await AmiOriginator(lambda: link).originate("PJSIP/x", "c", "s", {}, 10)
    assert out.status is OriginateStatus.UNAVAILABLE and out.reason == "pbx_unavailable"
    assert not link.available  # and the link knows: the next one is not even sent
    sent = sum(1 for frames in ami.received for f in frames if f.get("Action") == "Originate")
    out = await AmiOriginator(lambda: link).originate("PJSIP/x", "c", "s", {}, 10)
    assert out.status is OriginateStatus.UNAVAILABLE
    assert sum(1 for frames in ami.received for f in frames if f.get("Action") == "Originate") == sent
    await link.stop()
    out = await AmiOriginator(link).originate("PJSIP/x", "c", "s", {}, 10)
    assert out.status is OriginateStatus.UNAVAILABLE and out.reason == "ami_action_not_sent"

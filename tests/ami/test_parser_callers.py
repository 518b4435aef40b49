"""Caller names whose case mapping changes their length, through the whole server
and the stand-in over AsyncAGI: every AMI event of the call carries the name
(``CallerIDName``), and the AsyncAGI results must still be matched.

Before the parser stopped taking offsets from ``raw.lower()``, ``İ`` shifted
every value after it: ``AsyncAGIExec``'s ``CommandId`` never matched, the
caller heard silence and was hung up when the command timed out.
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from callcenter.appkeys import AMI_LINKS
from callcenter.simulator import AsteriskStandIn, Caller, HangUp, Press, Wait
from tests.ami.test_client import until
from tests.integration.test_hotline_e2e import _call_log_path, office  # noqa: F401 - fixture

# "İ".lower() and "ẞ".casefold() are longer than they are; "ﬁ".upper() is "FI";
# a final "Σ" lowers to "ς" or "σ" by context.
NAMES = ["İlkay 业主", "ẞtraße", "ﬁona", "ΣΟΦΊΑ Σ"]


@pytest.mark.parametrize("office", ["asyncagi"], indirect=True)
@pytest.mark.parametrize("name", NAMES)
async def test_a_caller_whose_name_changes_length_in_lower_case_reaches_the_queue(
    office: tuple[TestClient, AsteriskStandIn],  # type: ignore[type-arg]  # noqa: F811
    name: str,
) -> None:
    client, standin = office
    await until(lambda: client.app[AMI_LINKS].link_states().get("standin") == "connected", 10)
    standin.place_call(Caller(number="13812345678", name=name, did="4008001234",
                              script=[Wait(0.3), Press("1"), Wait(0.3), Press("1"), Wait(1.0),
                                      HangUp()]))
    path = await _call_log_path(client, "13812345678")
    assert path == ["报修", "水电"]  # the menu was heard and answered
    joined = [dict(e) for e in standin.events if dict(e).get("Event") == "QueueCallerJoin"]
    assert joined and joined[0]["CallerIDName"] == name

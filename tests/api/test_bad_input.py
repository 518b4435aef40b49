"""Bad input is a 400 (or 404) naming the field, never a 500: the cases that were 500s.

Each row is one request that crashed the server before the request models
(``callcenter.web.api``) validated input; on both backends (PostgreSQL refuses
ids over 2**31-1 and NUL in text; SQLite ids over 2**63-1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from callcenter.web.errors import json_response
from tests.api.conftest import Api

BIG = "9" * 5000
OVER_INT32 = 2**31


@dataclass(frozen=True)
class Bad:
    name: str
    method: str
    path: str
    body: Any = None  # a dict is sent as JSON; bytes as they are
    status: int = 400
    field: str | None = None
    headers: dict[str, str] | None = None


CASES = [
    Bad("incident id beyond any column", "GET", "/api/incidents/99999999999999999999",
        status=404, field="incident_id"),
    Bad("incident id over 2**31-1", "GET", f"/api/incidents/{OVER_INT32}", status=404,
        field="incident_id"),
    Bad("ticket id over 2**31-1", "GET", f"/api/tickets/{OVER_INT32}", status=404,
        field="ticket_id"),
    Bad("ack of an incident id over 2**31-1", "POST", f"/api/incidents/{OVER_INT32}/ack",
        status=404, field="incident_id"),
    Bad("room_id over 2**31-1 in a body", "POST", "/api/tickets",
        {"category": "plumbing", "summary": "漏水", "room_id": OVER_INT32}, field="room_id"),
    Bad("community id over 2**63 in a body", "POST", "/api/incidents",
        {"category": "fire", "community_id": 10**20}, field="community_id"),
    Bad("community id over 2**31-1 in a path", "PUT",
        f"/api/escalation-policies/{OVER_INT32}/fire", {"steps": []}, field="community"),
    Bad("schedule member over 2**31-1", "PUT", "/api/oncall/schedules/lakeside/night_duty",
        {"shifts": [{"start": "18:00", "end": "08:00", "members": [OVER_INT32],
                     "rotation_start": "2026-12-01"}]}, field="shifts[0].members[0]"),
    Bad("NUL in a ticket's summary", "POST", "/api/tickets",
        {"category": "plumbing", "summary": "漏\u0000水"}, field="summary"),
    Bad("NUL in a search", "GET", "/api/console/search?q=%00", field="q"),
    Bad("NUL in a community code", "GET", "/api/oncall/now?role=engineer&community=a%00",
        field="community"),
    Bad("a lone surrogate in a string", "POST", "/api/tickets",
        b'{"category": "plumbing", "summary": "\\ud800"}', field="summary"),
    Bad("a lone surrogate the error would echo", "POST", "/api/console/call",
        b'{"call_id": "\\udcff"}', field="call_id"),
    Bad("JSON nested 100000 deep", "POST", "/api/tickets", b"[" * 100000, field="body"),
    Bad("an unknown charset", "POST", "/api/tickets",
        json.dumps({"category": "plumbing", "summary": "x"}).encode(), field="Content-Type",
        headers={"Content-Type": "application/json; charset=no-such-charset"}),
    Bad("a 5000-digit integer in a body", "POST", "/api/tickets",
        b'{"category": "plumbing", "summary": "x", "room_id": ' + BIG.encode() + b"}",
        field="room_id"),
    Bad("a 5000-digit integer in a query", "GET", f"/api/calls?limit={BIG}", field="limit"),
    Bad("a 5000-digit id in a path", "GET", f"/api/tickets/{BIG}", status=404,
        field="ticket_id"),
    Bad("tickets since year 1", "GET", "/api/tickets?since=0001-01-01", field="since"),
    Bad("tickets until year 9999", "GET", "/api/tickets?until=9999-12-31", field="until"),
    Bad("calls from year 1", "GET", "/api/calls?from=0001-01-01T00:00:00", field="from"),
    Bad("calls to year 9999", "GET", "/api/calls?to=9999-12-31", field="to"),
    Bad("an override starting in year 1", "POST", "/api/oncall/overrides",
        {"community": "lakeside", "role": "engineer", "starts_at": "0001-01-01T00:00:00",
         "ends_at": "2026-12-02T00:00:00", "user_id": 1}, field="starts_at"),
    Bad("true as a person id", "POST", "/api/console/call", {"person_id": True},
        field="person_id"),
    Bad("true as a community id", "POST", "/api/incidents",
        {"category": "fire", "community_id": True}, field="community_id"),
    Bad("true as a ticket's room", "POST", "/api/tickets",
        {"category": "plumbing", "summary": "x", "room_id": True}, field="room_id"),
    Bad("a unicode digit as a community", "PUT", "/api/escalation-policies/%C2%B2/fire",
        {"steps": []}, field="community"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input_is_a_client_error_naming_the_field(api: Api, case: Bad) -> None:
    headers = dict(api.supervisor)
    kwargs: dict[str, Any] = {}
    if isinstance(case.body, bytes):
        headers["Content-Type"] = "application/json"
        kwargs["data"] = case.body
    elif case.body is not None:
        kwargs["json"] = case.body
    headers.update(case.headers or {})
    resp = await api.client.request(case.method, case.path, headers=headers, **kwargs)
    text = await resp.text()
    assert resp.status == case.status, text[:500]
    body = json.loads(text)
    assert body["error"] == ("not_found" if case.status == 404 else "invalid_input"), body
    assert body["details"]["field"] == case.field, body


async def test_agent_page_with_a_token_of_no_person_is_a_client_error(api: Api) -> None:
    """``GET /agent`` with a service token (no person behind it) was an AssertionError."""
    resp = await api.client.get("/agent", headers=api.service, allow_redirects=False)
    assert resp.status == 400, (await resp.text())[:300]
    assert "个人账号" in await resp.text()


async def test_agent_page_with_a_person_token_renders(api: Api) -> None:
    resp = await api.client.get("/agent", headers=api.agent, allow_redirects=False)
    assert resp.status == 200


def test_a_surrogate_in_a_response_is_replaced_not_raised() -> None:
    resp = json_response({"error": "not_found", "message": "x", "details": {"id": "\ud800a"}},
                         status=404)
    assert resp.body is not None
    assert json.loads(bytes(resp.body))["details"]["id"] == "\ufffda"  # type: ignore[arg-type]


async def test_search_for_a_percent_sign_finds_no_one(api: Api) -> None:
    for q in ("%", "_", "\\", "%%"):
        resp = await api.client.get("/api/console/search", params={"q": q},
                                    headers=api.supervisor)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["results"] == [], q
    resp = await api.client.get("/api/console/search", params={"q": "李"},
                                headers=api.supervisor)
    assert (await resp.json())["results"], "a plain name still matches"

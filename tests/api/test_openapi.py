"""The OpenAPI 3.1 document is built from the declared operations and served with a docs page."""

from __future__ import annotations

from tests.api.conftest import Api


async def test_the_document_covers_every_api_route_and_is_public(api: Api) -> None:
    resp = await api.client.get("/api/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.resource.canonical) for r in api.client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/")
              and r.method != "HEAD" and r.resource.canonical not in ("/api/openapi.json",
                                                                      "/api/docs")}
    assert served <= documented, served - documented
    get_ticket = doc["paths"]["/api/tickets/{ticket_id}"]["get"]
    assert get_ticket["parameters"][0]["schema"]["maximum"] == 2**31 - 1
    assert {"401", "404"} <= set(get_ticket["responses"])


async def test_the_docs_page_renders_offline_from_the_document(api: Api) -> None:
    resp = await api.client.get("/api/docs")
    assert resp.status == 200
    page = await resp.text()
    assert "POST /api/tickets" in page and "新建工单" in page
    assert "https://" not in page and "cdn" not in page.lower()  # nothing from the network

"""``GET /ws/agent``: the WebSocket every console tab opens."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from callcenter.auth.middleware import current_identity
from callcenter.console.keys import AGENT_HUB
from callcenter.errors import Forbidden, Unauthorized


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser (or a same-origin non-CORS client)
    return urlsplit(origin).netloc == request.host


async def agent_socket(request: web.Request) -> web.StreamResponse:
    ident = current_identity(request)
    if ident is None or ident.user_id is None:
        raise Unauthorized("请先登录 / sign in first")
    if ident.via == "session" and not _same_origin(request):
        # A cookie rides along on cross-site WebSocket handshakes: refuse them.
        raise Forbidden("来源不匹配 / cross-origin WebSocket refused",
                        details={"origin": request.headers.get("Origin", "")})
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
    await ws.prepare(request)
    await request.app[AGENT_HUB].attach(ws, ident, remote=request.remote or "")
    return ws

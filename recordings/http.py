"""GET /recordings/{id}: a stored voicemail recording (signed-in users only)."""

from __future__ import annotations

from aiohttp import web

from callcenter.auth.middleware import current_identity, require_role
from callcenter.errors import NotFound
from recordings.services import RecordingService

RECORDINGS = web.AppKey("recordings", RecordingService)
# An original is served only when it has no PCM WAV copy (its format could not
# be decoded); then it is a download, not something a browser plays.
_CONTENT_TYPES = {".wav": "audio/wav", ".gsm": "audio/x-gsm"}


def _recording_id(request: web.Request) -> int:
    raw = request.match_info["recording_id"]
    if not raw.isdigit() or len(raw) > 12:
        raise NotFound("录音不存在 / no such recording", details={"recording_id": raw})
    return int(raw)


@require_role()
async def get_recording(request: web.Request) -> web.StreamResponse:
    rid = _recording_id(request)
    ident = current_identity(request)
    path = await request.app[RECORDINGS].file_for(
        rid, scope=ident.communities if ident is not None else frozenset())
    suffix = path.suffix.lower()
    if not suffix[1:].isalnum() or not suffix.isascii():
        suffix = ".bin"
    return web.FileResponse(path, headers={
        "Content-Type": _CONTENT_TYPES.get(suffix, "application/octet-stream"),
        "Content-Disposition": f'inline; filename="recording-{rid}{suffix}"',
        "Cache-Control": "private, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/recordings/{recording_id}", get_recording)

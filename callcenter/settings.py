"""Settings: one TOML file, then ``CALLCENTER_*`` environment overrides.

Loaded once into frozen dataclasses and validated at start. An invalid value
stops the program with a ``SettingsError`` naming the key and the file.
Secrets are kept in ``Secret`` wrappers whose ``repr`` never shows them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_CONFIG_NAME = "callcenter.toml"
ENV_PREFIX = "CALLCENTER_"


class SettingsError(Exception):
    """A setting is missing or invalid. ``key`` is dotted (``asterisk[0].port``)."""

    error_id = "settings_invalid"

    def __init__(self, key: str, message: str, source: str) -> None:
        super().__init__(f"{source}: {key}: {message}")
        self.key = key
        self.source = source


class Secret(str):
    """A string that hides itself in repr/str formatting of containers and logs."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""
    echo: bool = False


@dataclass(frozen=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    session_max_age_s: int = 8 * 3600
    cookie_secure: bool = False
    # Signing in once more beyond this ends the user's oldest session.
    max_sessions_per_user: int = 10
    # X-Forwarded-For is believed only from these peers (addresses or CIDRs).
    trusted_proxies: tuple[str, ...] = ()
    # Bearer token that shows /healthz details (besides supervisor/admin tokens).
    health_token: Secret = Secret("")
    # Prometheus /metrics: scraped with this Bearer token, or without one on a
    # listener of its own at 127.0.0.1:metrics_port (0: any free port). Neither
    # set: /metrics is 404. Docs: docs/DEPLOY.md, "Metrics".
    metrics_token: Secret = Secret("")
    metrics_port: int | None = None
    # Password checks: threads, and how many more may wait before a 503.
    password_workers: int = 2
    password_queue: int = 16
    # Seconds a client has to send a request's head, then its body; an idle
    # keep-alive connection is closed after keepalive_timeout_s.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    keepalive_timeout_s: float = 15.0
    # Open connections at most (never above the open-file limit minus headroom).
    max_connections: int = 2000


@dataclass(frozen=True)
class AsteriskSettings:
    name: str = "pbx1"
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "callcenter"
    secret: Secret = field(default_factory=lambda: Secret(""))
    community: str | None = None
    ping_interval: float = 10.0
    action_timeout: float = 10.0
    connect_timeout: float = 5.0
    reconnect_max_s: float = 60.0
    hotline_context: str = "callcenter-hotline"
    trunk: str = "PJSIP/{number}@trunk"
    extension_channel: str = "PJSIP/{extension}"
    # The server's heartbeat in AstDB (callcenter/alive); the printed hotline skips
    # AGI(agi:async) when it is older than 3 intervals. fallback_dial: the night-duty /
    # front-desk phone a caller is put through to then (a Dial string, empty: voicemail only).
    heartbeat_interval_s: float = 5.0
    fallback_dial: str = ""


@dataclass(frozen=True)
class FastAgiSettings:
    host: str = "127.0.0.1"
    port: int = 4573
    enabled: bool = True


@dataclass(frozen=True)
class VoicemailSettings:
    spool_dir: Path = Path("/var/spool/asterisk/voicemail")
    context: str = "default"
    mailboxes: tuple[str, ...] = ("8000",)
    scan_interval_s: float = 60.0
    retention_days: int = 365


ONCALL_PREFER = ("both", "extension", "mobile")


@dataclass(frozen=True)
class OnCallSettings:
    """How a call routed to a role rings the chain (primary, backup, supervisor).

    Each person rings ``ring_timeout_s`` seconds before the next one; when
    nobody answers, the caller leaves a message in ``voicemail_mailbox`` (empty:
    the first of ``voicemail.mailboxes``, the repair intake) unless
    ``voicemail_fallback`` is off, in which case the call ends.

    ``queue_wait_s``: how long a caller waits in the front-desk queue for an
    agent before being asked for a message (Queue()'s timeout)."""

    ring_timeout_s: int = 20
    queue_wait_s: int = 300
    prefer: str = "both"  # both (extension and mobile ring together), extension, mobile
    voicemail_fallback: bool = True
    voicemail_mailbox: str = ""


@dataclass(frozen=True)
class PagingSettings:
    """``fallback``: where a page goes when its incident's community has no PBX that can
    take it (no ``[[asterisk]]`` link of that community, or the link is down):
    ``"wait"`` (the step waits for that PBX), ``"pbx:NAME"`` (through the link named
    NAME) or ``"notifiers"`` (the person's own WeCom / DingTalk / webhook / email,
    and the chain goes on). The incident's timeline says which (``callcenter/paging/
    pbx_route.py``)."""

    fallback: str = "wait"


@dataclass(frozen=True)
class VoskSettings:
    model_path: Path | None = None
    workers: int = 1
    recycle_after: int = 200
    job_timeout_s: float = 300.0


@dataclass(frozen=True)
class TriageSettings:
    """``lexicon``: a folder with a company's own ``categories.toml`` and
    ``emergencies.toml`` (copies of ``ticketing/triage/lexicon/``, extended),
    relative to the settings file like ``data_dir``; unset: the built-in
    lexicon. Checked at start (see :func:`_validate_triage`)."""

    lexicon: Path | None = None


@dataclass(frozen=True)
class HaSettings:
    """Two servers on one PostgreSQL: one owner per ``[[asterisk]]`` link
    (``callcenter/ha``). The owner renews its lease every ``renew_s``; the lease
    lasts ``lease_ttl_s`` by the database's clock; the owner stops sending on the
    link ``safety_margin_s`` before its lease could run out by its own clock."""

    lease_ttl_s: float = 3.0
    renew_s: float = 1.0
    safety_margin_s: float = 0.5


@dataclass(frozen=True)
class CallbackSettings:
    """The callback worklist (``callcenter/calls/callbacks.py``, docs/CALLBACKS.md).

    ``min_ivr_s``: a call that hung up in the IVR sooner than this after it started
    (a misdial, a caller who heard the greeting and rang off at once) is not listed;
    0 lists every one. A call that waited in the queue or rang someone is always
    listed. ``dial_match_s``: how long after an agent dialled a callback the
    outgoing call to that number counts as the callback (it rings the agent first)."""

    min_ivr_s: float = 5.0
    dial_match_s: float = 300.0


@dataclass(frozen=True)
class OutboundSettings:
    """The outbound dialer (``callcenter/outbound``, docs/OUTBOUND.md).

    ``max_calls``: campaign calls at once per PBX link, across servers; ``pace_s``:
    the least time between two starts on a link; ``ring_s``: how long an owner's phone
    rings. ``quiet_hours``: no campaign call then, local time (and none on public
    holidays); ``quiet_hours_by_community``: ``["code=20:30-09:00", ...]``.
    ``caller_id``: the number presented; ``caller_ids``: ``["code=4008001234", ...]``
    per community (its hotline, so owners know who calls). ``context``:
    ``callcenter-outbound`` (AsyncAGI) or ``callcenter-outbound-fastagi``.
    ``surveys``: call owners after 完工; ``survey_delay_s``: how long after.
    ``max_call_s``: the longest an answered campaign call lasts (its script hangs up
    by then): a job whose server died is called again only after ring + this + 30 s."""

    enabled: bool = True
    max_calls: int = 30
    pace_s: float = 0.2
    ring_s: float = 30.0
    quiet_hours: str = "21:00-08:30"
    quiet_hours_by_community: tuple[str, ...] = ()
    caller_id: str = ""
    caller_ids: tuple[str, ...] = ()
    context: str = "callcenter-outbound"
    surveys: bool = True
    survey_delay_s: float = 7200.0
    max_call_s: float = 180.0


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class LoggingSettings:
    """``format``: ``text`` (a line a person reads) or ``json`` (one object per
    line, for a log collector); ``level``: the least severe level written
    (``-v`` on the command line makes it DEBUG)."""

    format: str = "text"
    level: str = "INFO"


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("callcenter-data")
    timezone: str = "Asia/Shanghai"
    default_community: str | None = None
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    asterisk: tuple[AsteriskSettings, ...] = ()
    fastagi: FastAgiSettings = field(default_factory=FastAgiSettings)
    voicemail: VoicemailSettings = field(default_factory=VoicemailSettings)
    vosk: VoskSettings = field(default_factory=VoskSettings)
    oncall: OnCallSettings = field(default_factory=OnCallSettings)
    paging: PagingSettings = field(default_factory=PagingSettings)
    triage: TriageSettings = field(default_factory=TriageSettings)
    ha: HaSettings = field(default_factory=HaSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    ivr_menus: tuple[Path, ...] = ()
    source: str = "<defaults>"

    @property
    def database_url(self) -> str:
        """The configured URL, or a SQLite file under the data directory."""
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'callcenter.sqlite3').resolve()}"

    def redacted(self) -> dict[str, Any]:
        """A printable view with every secret masked (``check-config``)."""
        from callcenter.db.urls import redact_url

        def conv(value: Any) -> Any:
            if isinstance(value, Secret):
                return "***" if value else ""
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, tuple):
                return [conv(v) for v in value]
            if hasattr(value, "__dataclass_fields__"):
                return {f.name: conv(getattr(value, f.name)) for f in fields(value)}
            return value

        out = conv(self)
        out["database"]["url"] = redact_url(self.database_url)
        return dict(out)


# --------------------------------------------------------------------------- loading

_SECTIONS: dict[str, type] = {
    "database": DatabaseSettings,
    "http": HttpSettings,
    "fastagi": FastAgiSettings,
    "voicemail": VoicemailSettings,
    "vosk": VoskSettings,
    "oncall": OnCallSettings,
    "paging": PagingSettings,
    "triage": TriageSettings,
    "ha": HaSettings,
    "callbacks": CallbackSettings,
    "outbound": OutboundSettings,
    "logging": LoggingSettings,
}


def _coerce(value: Any, annotation: str, key: str, source: str) -> Any:
    ann = annotation.replace(" ", "")
    optional = ann.endswith("|None")
    base = ann.removesuffix("|None")
    if value is None or (optional and value == ""):
        if optional:
            return None
        raise SettingsError(key, "a value is required", source)
    try:
        if base == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if base == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base == "str":
            if not isinstance(value, (str, int)):
                raise ValueError
            return str(value)
        if base == "Secret":
            return Secret(str(value))
        if base == "Path":
            if not isinstance(value, str) or not value:
                raise ValueError
            return Path(value).expanduser()
        if base == "tuple[str,...]":
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError
            return tuple(str(v).strip() for v in value)
        if base == "tuple[Path,...]":
            if isinstance(value, str):
                value = [v for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ValueError
            return tuple(Path(str(v).strip()).expanduser() for v in value)
    except (TypeError, ValueError):
        raise SettingsError(key, f"expected {base}, got {value!r}", source) from None
    raise SettingsError(key, f"unsupported type {annotation}", source)


def _build(cls: type, raw: Mapping[str, Any], prefix: str, source: str) -> Any:
    if not isinstance(raw, Mapping):
        raise SettingsError(prefix, "expected a table", source)
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise SettingsError(f"{prefix}.{key}", "unknown setting", source)
        kwargs[key] = _coerce(value, str(known[key].type), f"{prefix}.{key}", source)
    return cls(**kwargs)


def _validate(s: Settings) -> None:
    src = s.source
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError("timezone", f"unknown time zone {s.timezone!r}", src) from None
    for name, port in (("http.port", s.http.port), ("fastagi.port", s.fastagi.port)):
        if not 0 <= port <= 65535:
            raise SettingsError(name, f"port {port} out of range 0-65535", src)
    url = s.database.url
    if url and not url.split(":", 1)[0].startswith(("sqlite", "postgresql", "postgres")):
        raise SettingsError("database.url", "only sqlite:// and postgresql:// URLs are supported", src)
    names = set()
    for i, a in enumerate(s.asterisk):
        key = f"asterisk[{i}]"
        if not a.name:
            raise SettingsError(f"{key}.name", "a name is required", src)
        if a.name in names:
            raise SettingsError(f"{key}.name", f"duplicate name {a.name!r}", src)
        names.add(a.name)
        if not 0 < a.port <= 65535:
            raise SettingsError(f"{key}.port", f"port {a.port} out of range 1-65535", src)
        if not a.username:
            raise SettingsError(f"{key}.username", "a username is required", src)
        if a.ping_interval <= 0:
            raise SettingsError(f"{key}.ping_interval", "must be positive", src)
        if not 1 <= a.heartbeat_interval_s <= 60:
            raise SettingsError(f"{key}.heartbeat_interval_s", "must be between 1 and 60 seconds", src)
        if len(s.asterisk) > 1 and not a.community:
            raise SettingsError(f"{key}.community", "required when several PBXs are configured", src)
    if s.vosk.workers < 1:
        raise SettingsError("vosk.workers", "at least one worker", src)
    _validate_oncall(s)
    _validate_paging(s, names)
    _validate_triage(s)
    _validate_ha(s.ha, src)
    if not 0 <= s.callbacks.min_ivr_s <= 600:
        raise SettingsError("callbacks.min_ivr_s", "must be between 0 and 600 seconds", src)
    if not 10 <= s.callbacks.dial_match_s <= 3600:
        raise SettingsError("callbacks.dial_match_s", "must be between 10 and 3600 seconds", src)
    _check_outbound(s.outbound, src)
    _validate_http(s)
    _validate_logging(s.logging, src)


def _validate_ha(ha: HaSettings, src: str) -> None:
    if ha.renew_s <= 0:
        raise SettingsError("ha.renew_s", "must be positive", src)
    if ha.safety_margin_s < 0:
        raise SettingsError("ha.safety_margin_s", "must not be negative", src)
    if ha.lease_ttl_s <= ha.renew_s + ha.safety_margin_s:
        raise SettingsError("ha.lease_ttl_s", "must be longer than renew_s + safety_margin_s "
                            f"({ha.renew_s:g} + {ha.safety_margin_s:g})", src)


def _validate_paging(s: Settings, links: set[str]) -> None:
    fb = s.paging.fallback.strip()
    if fb in ("wait", "notifiers"):
        return
    if not fb.startswith("pbx:") or not fb[4:].strip():
        raise SettingsError("paging.fallback", 'expected "wait", "notifiers" or "pbx:NAME" '
                            f"(NAME an [[asterisk]] link), not {s.paging.fallback!r}", s.source)
    if fb[4:].strip() not in links:
        raise SettingsError("paging.fallback", f"no [[asterisk]] link named {fb[4:].strip()!r} "
                            f"(known: {', '.join(sorted(links)) or 'none'})", s.source)


def _validate_logging(lg: LoggingSettings, src: str) -> None:
    if lg.format not in LOG_FORMATS:
        raise SettingsError("logging.format", f"expected one of {', '.join(LOG_FORMATS)}, "
                            f"got {lg.format!r}", src)
    if lg.level.upper() not in LOG_LEVELS:
        raise SettingsError("logging.level", f"expected one of {', '.join(LOG_LEVELS)}, "
                            f"got {lg.level!r}", src)


def _validate_http(s: Settings) -> None:
    from callcenter.auth.throttle import parse_networks

    h, src = s.http, s.source
    try:
        parse_networks(h.trusted_proxies)
    except ValueError as exc:
        raise SettingsError("http.trusted_proxies", str(exc), src) from None
    for key in ("max_sessions_per_user", "password_workers", "max_connections"):
        if getattr(h, key) < 1:
            raise SettingsError(f"http.{key}", "must be at least 1", src)
    if h.password_queue < 0:
        raise SettingsError("http.password_queue", "must not be negative", src)
    for key in ("header_timeout_s", "body_timeout_s", "keepalive_timeout_s"):
        if not getattr(h, key) > 0:
            raise SettingsError(f"http.{key}", "must be positive", src)
    if h.metrics_port is not None and not 0 <= h.metrics_port <= 65535:
        raise SettingsError("http.metrics_port", f"port {h.metrics_port} out of range 0-65535", src)


LEXICON_FILES = ("categories.toml", "emergencies.toml")


def _validate_triage(s: Settings) -> None:
    """A company lexicon must be a folder with both files, each valid TOML, whose
    categories are the ticket categories and whose rules compile."""
    folder = s.triage.lexicon
    if folder is None:
        return
    key, src = "triage.lexicon", s.source
    if not folder.is_dir():
        raise SettingsError(key, f"lexicon folder {folder} does not exist or is not a folder", src)
    parsed: dict[str, Any] = {}
    for name in LEXICON_FILES:
        path = folder / name
        try:
            with path.open("rb") as fh:
                parsed[name] = tomllib.load(fh)
        except FileNotFoundError:
            raise SettingsError(key, f"{path} is missing (a lexicon folder holds "
                                f"{' and '.join(LEXICON_FILES)})", src) from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(key, f"{path}: {exc}", src) from None
    from ticketing.categories import CATEGORIES
    from ticketing.triage import load_lexicon

    categories = folder / "categories.toml"
    for category, words in parsed["categories.toml"].items():
        if category not in CATEGORIES:
            raise SettingsError(key, f"{categories}: unknown category [{category}] (known: "
                                f"{', '.join(CATEGORIES)})", src)
        if not isinstance(words, dict) or not all(
                isinstance(w, int | float) and not isinstance(w, bool) for w in words.values()):
            raise SettingsError(key, f"{categories}: [{category}] must map keywords to "
                                "numeric weights", src)
    try:
        lexicon = load_lexicon(folder)
    except Exception as exc:  # a rule that does not compile, a missing key, a wrong type
        detail = f"{type(exc).__name__}: {exc}"
        raise SettingsError(key, f"{folder / 'emergencies.toml'}: {detail}", src) from None
    unknown = sorted({r.category for r in lexicon.emergencies} - set(CATEGORIES))
    if unknown:
        raise SettingsError(key, f"{folder / 'emergencies.toml'}: unknown category "
                            f"{', '.join(unknown)} (known: {', '.join(CATEGORIES)})", src)


ONCALL_RING_RANGE_S = (5, 120)
QUEUE_WAIT_RANGE_S = (5, 3600)


def _validate_oncall(s: Settings) -> None:
    src, oc = s.source, s.oncall
    low, high = ONCALL_RING_RANGE_S
    if not low <= oc.ring_timeout_s <= high:
        raise SettingsError("oncall.ring_timeout_s",
                            f"{oc.ring_timeout_s} s out of range {low}-{high} s", src)
    low, high = QUEUE_WAIT_RANGE_S
    if not low <= oc.queue_wait_s <= high:
        raise SettingsError("oncall.queue_wait_s",
                            f"{oc.queue_wait_s} s out of range {low}-{high} s", src)
    if oc.prefer not in ONCALL_PREFER:
        raise SettingsError("oncall.prefer", f"expected one of {', '.join(ONCALL_PREFER)}, "
                            f"got {oc.prefer!r}", src)
    if not oc.voicemail_fallback:
        return
    if not oc.voicemail_mailbox and not s.voicemail.mailboxes:
        raise SettingsError("oncall.voicemail_mailbox", "the voicemail fallback needs a mailbox: "
                            "set it, or list one in voicemail.mailboxes, or turn "
                            "oncall.voicemail_fallback off", src)
    if oc.voicemail_mailbox and oc.voicemail_mailbox not in s.voicemail.mailboxes:
        raise SettingsError("oncall.voicemail_mailbox",
                            f"mailbox {oc.voicemail_mailbox!r} is not in voicemail.mailboxes "
                            f"({', '.join(s.voicemail.mailboxes) or 'none'}), so its messages "
                            "would never become tickets", src)


def _apply_env(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    """``CALLCENTER_HTTP__PORT=9000`` → raw["http"]["port"]; top-level keys as
    ``CALLCENTER_DATA_DIR``; the n-th PBX as ``CALLCENTER_ASTERISK__0__SECRET``;
    ``CALLCENTER_DATABASE_URL`` is accepted as a shorthand."""
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == "CALLCENTER_CONFIG":
            continue
        rest = name[len(ENV_PREFIX):].lower()
        if rest == "database_url":
            rest = "database__url"
        parts = rest.split("__")
        if parts[0] == "asterisk" and len(parts) == 3 and parts[1].isdigit():
            entries = raw.setdefault("asterisk", [])
            idx = int(parts[1])
            while len(entries) <= idx:
                entries.append({})
            entries[idx][parts[2]] = value
        elif len(parts) == 2:
            raw.setdefault(parts[0], {})[parts[1]] = value
        elif len(parts) == 1:
            raw[parts[0]] = value


def _read_raw(path: Path | None, environ: Mapping[str, str] | None, must_exist: bool
              ) -> tuple[dict[str, Any], str, Path | None]:
    """The settings file's table with the environment applied, its source label
    and the file's path (None: defaults and environment only)."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get("CALLCENTER_CONFIG"):
        path = Path(environ["CALLCENTER_CONFIG"])
        must_exist = True
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        path = candidate if candidate.exists() else None
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            if must_exist:
                raise SettingsError("-", "configuration file not found", source) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError("-", f"not valid TOML: {exc}", source) from None
    _apply_env(raw, environ)
    if any(k.startswith(ENV_PREFIX) for k in environ):
        source += " + environment"
    return raw, source, path


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None,
                  *, must_exist: bool = False) -> Settings:
    """Load ``path`` (or ``$CALLCENTER_CONFIG``, or ``./callcenter.toml`` when present)."""
    raw, source, path = _read_raw(path, environ, must_exist)
    return settings_from_mapping(raw, source, base_dir=path.parent if path else None)


def load_logging_settings(path: Path | None = None, environ: Mapping[str, str] | None = None
                          ) -> LoggingSettings:
    """Only the ``[logging]`` table of the same file and environment, so that a
    command logs as configured from its first line on, before (and even when)
    the rest is validated."""
    raw, source, _ = _read_raw(path, environ, path is not None)
    lg = _build(LoggingSettings, raw.get("logging", {}), "logging", source)
    _validate_logging(lg, source)
    return cast(LoggingSettings, lg)


def settings_from_mapping(raw: Mapping[str, Any], source: str = "<mapping>",
                          base_dir: Path | None = None) -> Settings:
    kwargs: dict[str, Any] = {"source": source}
    top = {f.name: f for f in fields(Settings)}
    for key, value in raw.items():
        if key in _SECTIONS:
            kwargs[key] = _build(_SECTIONS[key], value, key, source)
        elif key == "asterisk":
            if isinstance(value, Mapping):
                value = [value]
            if not isinstance(value, list):
                raise SettingsError("asterisk", "expected [[asterisk]] entries", source)
            kwargs["asterisk"] = tuple(
                _build(AsteriskSettings, v, f"asterisk[{i}]", source) for i, v in enumerate(value)
            )
        elif key in top and key not in ("source", "database", "asterisk"):
            kwargs[key] = _coerce(value, str(top[key].type), key, source)
        else:
            raise SettingsError(key, "unknown setting", source)
    settings = Settings(**kwargs)
    if base_dir is not None and not settings.data_dir.is_absolute():
        settings = replace(settings, data_dir=(base_dir / settings.data_dir))
    lexicon = settings.triage.lexicon
    if base_dir is not None and lexicon is not None and not lexicon.is_absolute():
        settings = replace(settings, triage=TriageSettings(lexicon=base_dir / lexicon))
    _validate(settings)
    return settings


OUTBOUND_CONTEXTS = ("callcenter-outbound", "callcenter-outbound-fastagi")


def pairs(items: tuple[str, ...], key: str, source: str) -> dict[str, str]:
    """``["code=value", ...]`` as a mapping (a malformed item names the key)."""
    out: dict[str, str] = {}
    for item in items:
        code, sep, value = item.partition("=")
        if not sep or not code.strip() or not value.strip():
            raise SettingsError(key, f"expected community=value, got {item!r}", source)
        out[code.strip()] = value.strip()
    return out


def _check_outbound(o: OutboundSettings, src: str) -> None:
    from callcenter.errors import InvalidInput
    from callcenter.outbound.calling_hours import QuietHours

    if not 1 <= o.max_calls <= 500:
        raise SettingsError("outbound.max_calls", "must be between 1 and 500", src)
    if not 0 <= o.pace_s <= 60:
        raise SettingsError("outbound.pace_s", "must be between 0 and 60 seconds", src)
    if not 5 <= o.ring_s <= 120:
        raise SettingsError("outbound.ring_s", "must be between 5 and 120 seconds", src)
    if not 0 <= o.survey_delay_s <= 7 * 86400:
        raise SettingsError("outbound.survey_delay_s", "must be between 0 and 7 days", src)
    if not 10 <= o.max_call_s <= 1800:
        raise SettingsError("outbound.max_call_s", "must be between 10 and 1800 seconds", src)
    if o.context not in OUTBOUND_CONTEXTS:
        raise SettingsError("outbound.context", "one of " + ", ".join(OUTBOUND_CONTEXTS), src)
    pairs(o.caller_ids, "outbound.caller_ids", src)
    for key, text in [("outbound.quiet_hours", o.quiet_hours),
                      *(("outbound.quiet_hours_by_community", v) for v in pairs(
                          o.quiet_hours_by_community, "outbound.quiet_hours_by_community",
                          src).values())]:
        try:
            QuietHours.parse(text, field_name=key)
        except InvalidInput as exc:
            raise SettingsError(key, str(exc), src) from None

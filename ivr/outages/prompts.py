"""The sound of a notice: its free text spoken by espeak-ng into the prompts' directory.

A notice's prompt is ``outage/notice-<id>`` (``<sounds>/zh/outage/notice-<id>.wav``,
where ``callcenter prompts build`` puts every prompt, so Asterisk plays it like any
other). When espeak-ng or sox is missing, or rendering fails, the notice plays
``outage-generic`` instead, which ``callcenter prompts build`` renders with the
menus' prompts: a caller never hears silence. The engine accepts these names
without a ``[prompts]`` entry in the menus (``is_outage_prompt``)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ivr.prompts import PromptToolMissing, speak

log = logging.getLogger(__name__)

GENERIC = "outage-generic"
PRESS_1 = "outage-press-1"
NOTICE_PREFIX = "outage/"
PROMPT_TEXTS: dict[str, str] = {
    GENERIC: "您所在的楼栋目前有停水或停电，正在抢修，给您带来不便，敬请谅解。",
    PRESS_1: "如仍需人工服务，请按1；办理其他业务，请稍候。",
}
"""Built with the menus' prompts (``callcenter prompts build``)."""


def is_outage_prompt(name: str) -> bool:
    """A prompt the notices play: declared here, not in the menus' ``[prompts]``."""
    return name in PROMPT_TEXTS or name.startswith(NOTICE_PREFIX)


def notice_prompt(notice_id: int) -> str:
    return f"{NOTICE_PREFIX}notice-{notice_id}"


@dataclass(frozen=True, slots=True)
class Rendered:
    prompt: str
    note: str = ""  # why the generic prompt plays instead ('' when the text is spoken)


def tools_missing() -> str:
    """What the admin page says when notices cannot be spoken ('' when they can)."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if not missing:
        return ""
    return (f"本机未安装 {' 和 '.join(missing)}，通知无法按文字播报，来电将听到通用提示"
            "“您所在的楼栋目前有停水或停电，正在抢修”（Debian: apt-get install espeak-ng sox）")


def render_notice(text: str, sounds: Path, notice_id: int, *, lang: str = "zh") -> Rendered:
    """Speak ``text`` into ``<sounds>/<lang>/outage/notice-<id>.wav``; the generic
    prompt (and why) when that cannot be done."""
    name = notice_prompt(notice_id)
    try:
        speak(text, sounds / lang / f"{name}.wav")
    except PromptToolMissing:
        return Rendered(GENERIC, tools_missing() or "缺少 espeak-ng 或 sox")
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("outage notice %d could not be spoken: %s", notice_id, exc)
        return Rendered(GENERIC, "语音合成失败，来电将听到通用提示")
    return Rendered(name)

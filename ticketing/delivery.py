"""What a notice to staff came to: who it was meant for and whom it reached."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """``audience`` (夜班值班人员 / 前台 / 处理人和部门负责人 / 主管 …), the names
    reached, and what went wrong (empty when nothing did)."""

    audience: str
    delivered_to: tuple[str, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.delivered_to)

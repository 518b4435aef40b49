"""The 14 triage categories, their Chinese labels and the department each goes to.

One data table: change who handles what here, nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

DEPARTMENTS: dict[str, str] = {
    "engineering": "工程部",
    "cleaning": "保洁部",
    "security": "秩序部",
    "customer_service": "客服部",
    "greening": "绿化部",
}


@dataclass(frozen=True, slots=True)
class Category:
    key: str
    label: str
    department: str


CATEGORIES: dict[str, Category] = {
    c.key: c
    for c in (
        Category("plumbing", "给排水", "engineering"),
        Category("electrical", "电气", "engineering"),
        Category("elevator", "电梯", "engineering"),
        Category("gas", "燃气", "engineering"),
        Category("fire", "消防", "security"),
        Category("door_access", "门禁门锁", "engineering"),
        Category("public_facility", "公共设施", "engineering"),
        Category("sanitation", "环境卫生", "cleaning"),
        Category("noise", "噪音扰民", "security"),
        Category("security", "安全秩序", "security"),
        Category("parking", "停车", "security"),
        Category("fees", "费用", "customer_service"),
        Category("complaint", "服务投诉", "customer_service"),
        Category("other", "其他", "customer_service"),
    )
}

PRIORITIES: dict[str, str] = {"emergency": "紧急", "normal": "普通"}
COMPLAINT = "complaint"
COMPLAINT_GRADES: dict[str, str] = {"general": "一般投诉", "important": "重要投诉",
                                    "major": "重大投诉"}
"""投诉分级: only a ``complaint`` ticket has a grade (``general`` unless given)."""
DEFAULT_GRADE = "general"
MAJOR = "major"
SOURCES: dict[str, str] = {"voicemail": "语音留言", "phone": "来电", "agent": "坐席录入", "api": "接口",
                           "walk_in": "来访", "wechat": "微信", "callback": "回电"}


def department_for(category: str) -> str:
    return CATEGORIES[category].department


COMMON_AREAS: tuple[str, ...] = (
    "地下车库", "地面停车场", "电梯厅", "电梯轿厢", "单元大堂", "楼道", "楼顶天台", "小区大门",
    "道路", "绿化带", "儿童游乐区", "垃圾站", "泵房", "配电房", "会所", "围墙",
)
"""Places that belong to no one's room. With a building (3栋电梯厅) or without (地下车库)."""

BUILDING_WIDE: frozenset[str] = frozenset({"plumbing", "electrical", "elevator", "gas"})
"""Categories whose fault is usually a whole building's (停水, 停电, 电梯, 燃气): several
households of one building (or, when no building is known, of one community) reporting
one of these within the window are one group incident (``ticketing.groups``). Others
(a door lock, a fee, a complaint, noise) are each household's own and never grouped
by themselves; the front desk links them by hand when they are one event."""

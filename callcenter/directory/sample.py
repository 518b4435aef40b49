"""A sample community for the demo: deterministic, realistic Chinese owner data.

Rows use the column names of the 业主基本情况汇总表 that property offices keep,
so the demo loads them through the real importer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

HEADERS = ("小区", "楼栋", "单元", "房号", "姓名", "身份", "手机", "备用电话", "建筑面积", "欠费金额", "标签")

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = ("建国", "秀英", "桂英", "志强", "丽娟", "伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军",
         "杰", "娟", "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂兰", "文", "华", "红梅", "建华", "玉兰",
         "海燕", "子涵", "浩然", "梓轩", "欣怡", "一诺", "雨桐", "思远", "晓东", "春梅")
TAGS = ("VIP", "夜班族", "情绪易激动", "独居老人", "行动不便", "租户常换")

MOBILE_PREFIXES = ("130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152",
                   "155", "156", "157", "158", "159", "176", "177", "186", "187", "188", "189",
                   "198", "199")
DEMO_COMMUNITY = "湖畔花园"
KNOWN_DEMO_CALLERS = ("13812345678", "13900001111", "075526543210")
"""Numbers the demo's stand-in calls from; they are in the sample data."""


def sample_rows(*, buildings: int = 6, units: int = 2, floors: int = 12, per_floor: int = 2,
                seed: int = 20261122) -> Iterator[dict[str, str]]:
    """Owners (and some tenants and family members) for every room."""
    rng = random.Random(seed)
    used_numbers: set[str] = set()
    fixed = list(KNOWN_DEMO_CALLERS)

    def mobile() -> str:
        if fixed:
            return fixed.pop(0)
        while True:
            n = rng.choice(MOBILE_PREFIXES) + "".join(rng.choice("0123456789") for _ in range(8))
            if n not in used_numbers:
                used_numbers.add(n)
                return n

    def name() -> str:
        return rng.choice(SURNAMES) + rng.choice(GIVEN)

    for b in range(1, buildings + 1):
        for u in range(1, units + 1):
            for f in range(1, floors + 1):
                for r in range(1, per_floor + 1):
                    room = f"{f}{r:02d}"
                    area = rng.choice((68.5, 89.0, 95.2, 118.7, 132.0, 143.6))
                    arrears = 0.0 if rng.random() < 0.8 else round(rng.uniform(200, 6000), 2)
                    tags = [t for t in TAGS if rng.random() < 0.05]
                    spare = mobile() if rng.random() < 0.3 else ""
                    yield {
                        "小区": DEMO_COMMUNITY, "楼栋": str(b), "单元": str(u), "房号": room,
                        "姓名": name(), "身份": "业主", "手机": mobile(), "备用电话": spare,
                        "建筑面积": f"{area}", "欠费金额": f"{arrears:.2f}", "标签": "、".join(tags),
                    }
                    if rng.random() < 0.25:
                        yield {
                            "小区": DEMO_COMMUNITY, "楼栋": str(b), "单元": str(u), "房号": room,
                            "姓名": name(), "身份": rng.choice(("家属", "租户")), "手机": mobile(),
                            "备用电话": "", "建筑面积": "", "欠费金额": "", "标签": "",
                        }

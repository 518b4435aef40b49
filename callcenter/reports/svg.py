"""Charts as inline SVG, drawn here: they work with no internet and no script (the
pages' CSP allows no inline style, so colours are SVG presentation attributes).

``bars`` draws stacked bars (calls per hour: answered over abandoned ...);
``lines`` draws rates between 0 and 100 %. Every mark has a ``<title>`` (the
browser shows it on hover or a long press) and the chart a legend; the SVG scales
to its container's width (``viewBox``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import ceil, log10

from markupsafe import Markup, escape

# A small canvas, so text stays readable when a phone scales it to 360 px.
WIDTH, HEIGHT = 480, 270
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 32, 52
TITLE_PX, TICK_PX, LEGEND_PX = 16, 12, 13
MAX_LABELS = 7
PALETTE = ("#2f7d32", "#c62828", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str | None = None


def _nice_top(value: float) -> float:
    """The axis top for counts: four equal whole steps (1, 1.5, 2 … 8 × 10ⁿ) reaching
    ``value``."""
    step = max(value, 1.0) / 4
    magnitude = 10 ** int(log10(step)) if step >= 1 else 1
    for nice in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        size = nice * magnitude
        if step <= size and float(size).is_integer():
            return float(4 * size)
    return float(4 * ceil(step))


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def _frame(title: str, labels: Sequence[str], top: float, tick: str) -> list[str]:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<text x="4" y="18" font-size="{TITLE_PX}" fill="#222">{escape(title)}</text>']
    for i in range(5):
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#ddd" stroke-width="1"/>')
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="{TICK_PX}" '
                     f'fill="#555" text-anchor="end">{escape(tick.format(_fmt(value)))}</text>')
    n = max(len(labels), 1)
    every = max(1, ceil(n / MAX_LABELS))
    slot = (WIDTH - LEFT - RIGHT) / n
    for i, text in enumerate(labels):
        if i % every:
            continue
        x = LEFT + slot * (i + 0.5)
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="{TICK_PX}" '
                     f'fill="#555" text-anchor="middle">{escape(text)}</text>')
    return parts


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], 4
    for i, s in enumerate(series):
        colour = s.colour or PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{HEIGHT - 17}" width="12" height="12" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{HEIGHT - 6}" font-size="{LEGEND_PX}" '
                     f'fill="#222">{escape(s.name)}</text>')
        x += 28 + LEGEND_PX * len(s.name)
    return parts


def _svg(parts: list[str], title: str) -> Markup:
    body = "".join(parts)
    return Markup(f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
                  f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">'
                  f'{body}</svg>')


def bars(title: str, labels: Sequence[str], series: Sequence[Series], *,
         unit: str = "") -> Markup:
    """Stacked bars, one per label; ``unit`` follows each value in the tooltips."""
    n = len(labels)
    totals = [sum((s.values[i] or 0) for s in series) for i in range(n)]
    top = _nice_top(max(totals, default=0))
    parts = _frame(title, labels, top, "{}")
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(n, 1)
    width = max(1.0, slot * 0.7)
    for i in range(n):
        base = 0.0
        x = LEFT + slot * i + (slot - width) / 2
        for k, s in enumerate(series):
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / top
            y = TOP + plot_h - plot_h * (base + value) / top
            colour = s.colour or PALETTE[k % len(PALETTE)]
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                         f'height="{h:.1f}" fill="{colour}"><title>'
                         f'{escape(labels[i])} {escape(s.name)} {_fmt(value)}{escape(unit)}'
                         f'</title></rect>')
            base += value
    return _svg(parts + _legend(series), title)


def lines(title: str, labels: Sequence[str], series: Sequence[Series]) -> Markup:
    """Rates from 0 to 1, drawn as 0–100 %; a missing value (None) breaks the line."""
    n = len(labels)
    parts = _frame(title, labels, 100.0, "{}%")
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(n, 1)
    for k, s in enumerate(series):
        colour = s.colour or PALETTE[k % len(PALETTE)]
        run: list[str] = []
        for i in range(n):
            value = s.values[i]
            if value is None:
                if len(run) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                                 f'points="{" ".join(run)}"/>')
                run = []
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * value
            run.append(f"{x:.1f},{y:.1f}")
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>'
                         f'{escape(labels[i])} {escape(s.name)} {value * 100:.1f}%'
                         f'</title></circle>')
        if len(run) > 1:
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                         f'points="{" ".join(run)}"/>')
    return _svg(parts + _legend(series), title)

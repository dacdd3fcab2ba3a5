"""Charts as server-rendered SVG: the points distribution, a rank over time, compliance by organisation.

No JavaScript and no charting library: each function returns one ``<svg>`` element as a string,
ready to be put in a page.  Every chart is accessible: ``role="img"`` with a ``<title>`` and a
``<desc>`` that says in words what it shows, a text label on every bar and point, and a
``<title>`` per mark for the tooltip.  Chinese labels render with a list of CJK fonts, falling back
to the browser's sans-serif.  Every bar and point carries its value in a ``data-value`` attribute.
The words are Chinese unless the caller passes another :class:`~workflows.phrases.Wording` (the web
layer passes the request's language; the templates here are its msgids).
"""
from __future__ import annotations

import itertools
import math

from collections.abc import Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape, quoteattr

from .phrases import CHINESE, N_, Wording

FONT_FAMILY = ("'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', "
               "'WenQuanYi Micro Hei', 'Hiragino Sans GB', sans-serif")
BAR_COLOUR = "#b71c1c"
LINE_COLOUR = "#1565c0"
AXIS_COLOUR = "#555"
GRID_COLOUR = "#ddd"
_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    """A document-unique id for the title/desc pair (several charts may share a page)."""
    return f"{prefix}-{next(_ids)}"


def _open(kind: str, width: int, height: int, title: str, desc: str) -> list[str]:
    chart_id = _next_id(kind)
    return [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart chart-{kind}" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family={quoteattr(FONT_FAMILY)} '
             'font-size="12">'),
            f'<title id="{chart_id}-title">{escape(title)}</title>',
            f'<desc id="{chart_id}-desc">{escape(desc)}</desc>']


def _text(x: float, y: float, content: str, anchor: str = "middle", css: str = "label", size: int | None = None,
          fill: str = "#1a1a1a") -> str:
    font = f' font-size="{size}"' if size else ""
    return (f'<text class="{css}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}"{font}>'
            f'{escape(content)}</text>')


def percent(rate: Decimal | None) -> str:
    """"66.7%" for Decimal("0.6667"); "—" when there is no rate."""
    if rate is None:
        return "—"
    return f"{(Decimal(rate) * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def points_histogram(counts: Sequence[int], title: str | None = None, width: int = 640, height: int = 300,
                     wording: Wording = CHINESE) -> str:
    """Cadres per band of 10 points ([0,10) … [90,100]): one bar per band, its count above it."""
    words = wording.text
    title = title or words(N_("积分分布"))
    bands = [f"{10 * i}–{10 * i + 9 if i < len(counts) - 1 else 100}" for i in range(len(counts))]
    total = sum(counts)
    described = words(N_("，")).join(words(N_("%(band)s分 %(count)s人"), band=band, count=count)
                                     for band, count in zip(bands, counts))
    parts = _open("histogram", width, height, title,
                  words(N_("共%(total)s名团干部按积分分段的人数：%(bands)s。"), total=total, bands=described))
    left, right, top, bottom = 48, 12, 28, 44
    plot_w, plot_h = width - left - right, height - top - bottom
    tick = max(1, math.ceil(max(counts, default=0) / 4))  # whole-number grid lines, four of them
    peak = tick * 4
    slot = plot_w / max(len(counts), 1)
    parts.append(_text(left + plot_w / 2, 16, title, css="chart-title", size=14))
    for step in range(5):  # horizontal grid with counts
        y = top + plot_h - plot_h * step / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>')
        parts.append(_text(left - 6, y + 4, str(tick * step), anchor="end", css="axis"))
    for index, (band, count) in enumerate(zip(bands, counts)):
        bar_h = plot_h * count / peak
        x = left + index * slot + slot * 0.1
        y = top + plot_h - bar_h
        tip = words(N_("%(band)s分：%(count)s人"), band=band, count=count)
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{bar_h:.1f}" '
                     f'fill="{BAR_COLOUR}" data-band={quoteattr(band)} data-value="{count}">'
                     f'<title>{escape(tip)}</title></rect>')
        parts.append(_text(x + slot * 0.4, y - 4, str(count), css="value"))
        parts.append(_text(x + slot * 0.4, top + plot_h + 16, band, css="axis"))
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 f'stroke="{AXIS_COLOUR}"/>')
    parts.append(_text(left + plot_w / 2, height - 8, words(N_("积分（分）")), css="axis"))
    parts.append("</svg>")
    return "\n".join(parts)


def rank_over_time(points: Sequence[tuple[date, int | None]], title: str | None = None, of: int | None = None,
                   width: int = 640, height: int = 280, wording: Wording = CHINESE) -> str:
    """A line of the rank on each day (rank 1 at the top), a marker and the rank written at each point."""
    words = wording.text
    title = title or words(N_("排名变化"))
    known = [(day, rank) for day, rank in points if rank is not None]
    worst = max([rank for _day, rank in known] + [of or 1, 2])
    described = words(N_("，")).join(words(N_("%(day)s第%(rank)s名"), day=day, rank=rank) for day, rank in known)
    if not known:
        desc = words(N_("%(title)s：暂无数据。"), title=title)
    elif of:
        desc = words(N_("%(title)s：%(ranks)s（共%(of)s个）。"), title=title, ranks=described, of=of)
    else:
        desc = words(N_("%(title)s：%(ranks)s。"), title=title, ranks=described)
    parts = _open("rank-history", width, height, title, desc)
    left, right, top, bottom = 48, 16, 32, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    parts.append(_text(left + plot_w / 2, 16, title, css="chart-title", size=14))

    def y_of(rank: int) -> float:
        return top + plot_h * (rank - 1) / (worst - 1)

    for rank in sorted({1, worst, (1 + worst) // 2}):
        y = y_of(rank)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>')
        parts.append(_text(left - 6, y + 4, words(N_("第%(rank)s名"), rank=rank), anchor="end", css="axis"))
    step = plot_w / max(len(known) - 1, 1)
    coords = [(left + (index * step if len(known) > 1 else plot_w / 2), y_of(rank))
              for index, (_day, rank) in enumerate(known)]
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<polyline class="line" points="{path}" fill="none" stroke="{LINE_COLOUR}" stroke-width="2"/>')
    label_every = max(1, len(known) // 12)
    for index, ((day, rank), (x, y)) in enumerate(zip(known, coords)):
        tip = words(N_("%(date)s 第%(rank)s名"), date=wording.full_date(day), rank=rank)
        parts.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{LINE_COLOUR}" '
                     f'data-day="{day.isoformat()}" data-value="{rank}"><title>{escape(tip)}</title></circle>')
        if index % label_every == 0 or index == len(known) - 1:
            parts.append(_text(x, y - 8, str(rank), css="value"))
            parts.append(_text(x, top + plot_h + 18, wording.day(day), css="axis"))
    if not known:
        parts.append(_text(left + plot_w / 2, top + plot_h / 2, words(N_("暂无排名数据")), css="empty"))
    parts.append("</svg>")
    return "\n".join(parts)


def compliance_bars(items: Sequence[tuple[str, Decimal | None]], title: str | None = None,
                    width: int = 640, bar_height: int = 22, wording: Wording = CHINESE) -> str:
    """One horizontal bar per organisation with its rate (0–100 %) written beside it; no rate: "—"."""
    words = wording.text
    title = title or words(N_("“五个一”达标率"))
    height = 40 + len(items) * (bar_height + 8) + 24
    described = words(N_("，")).join(f"{label} {percent(rate)}" for label, rate in items)
    desc = words(N_("%(title)s：%(rates)s。"), title=title, rates=described) if items \
        else words(N_("%(title)s：暂无数据。"), title=title)
    parts = _open("compliance", width, height, title, desc)
    left, right, top = 180, 64, 32
    plot_w = width - left - right
    parts.append(_text(width / 2, 16, title, css="chart-title", size=14))
    for tick in (0, 50, 100):
        x = left + plot_w * tick / 100
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - 24}" stroke="{GRID_COLOUR}"/>')
        parts.append(_text(x, height - 8, f"{tick}%", css="axis"))
    for index, (label, rate) in enumerate(items):
        y = top + index * (bar_height + 8)
        share = float(rate) if rate is not None else 0.0
        shown = label if len(label) <= 12 else label[:11] + "…"
        tip = words(N_("%(label)s：%(rate)s"), label=label, rate=percent(rate))
        parts.append(_text(left - 8, y + bar_height * 0.7, shown, anchor="end", css="axis"))
        parts.append(f'<rect class="bar" x="{left}" y="{y:.1f}" width="{plot_w * share:.1f}" height="{bar_height}" '
                     f'fill="{BAR_COLOUR}" data-label={quoteattr(label)} '
                     f'data-value="{"" if rate is None else Decimal(rate)}"><title>{escape(tip)}</title></rect>')
        parts.append(_text(left + plot_w * share + 6, y + bar_height * 0.7, percent(rate), anchor="start",
                           css="value"))
    parts.append("</svg>")
    return "\n".join(parts)


__all__ = ["points_histogram", "rank_over_time", "compliance_bars", "percent", "FONT_FAMILY"]

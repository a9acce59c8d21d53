"""Small server-rendered SVG charts: no build step, no script, and nothing the strict CSP refuses.

Colours and sizes come from classes in app.css and SVG presentation attributes, never `style=`. Every bar or
cell is a link to the calls behind it and carries its number in a <title> (and as text where it fits).
A year's heat map has thousands of cells, so the markup is built with plain strings, escaping every text.

A chart that holds links is a role="group" named by its aria-label, not role="img": an image's children are
presentational, and a browser may then hide its links from assistive technology. Each link is named by its
<title>; the axis labels, which the titles repeat, stay hidden from it (aria-hidden), as they were in an image.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from math import ceil

from django.utils.safestring import SafeString, mark_safe


@dataclass
class Bar:
    label: str
    value: int
    href: str
    title: str = ""


def _role(parts: list[str]) -> str:
    """A chart with links is a group of them (an image's children are presentational); one without, an image."""
    return "group" if any(part.startswith("<a ") for part in parts) else "img"


TICK_CHAR = 6.5  # px per character of an axis label at .chart-tick's 11px (digits and short month names)
PHONE_WIDTH = 320  # what a chart is drawn for on a phone (375 px less the page's and the card's padding)


def bars(items: list[Bar], *, label: str, fit: int = 960, height: int = 160, tick_every: int = 1) -> SafeString:
    """A column chart drawn for a box about fit px wide (so that text keeps its size): one linked bar per item,
    a label under every tick_every-th bar or more sparsely, so that no two labels touch."""
    width_each = max(3, fit // max(1, len(items)))
    width = max(1, len(items)) * width_each
    widest = max([len(i.label) for i in items] + [1]) * TICK_CHAR + 8
    tick_every = max(tick_every, ceil(widest / width_each))
    top = max([i.value for i in items] + [1])
    plot = height - 34
    parts = []
    for n, item in enumerate(items):
        h = round(plot * item.value / top) if item.value else 0
        x = n * width_each
        middle = x + width_each / 2
        count = (
            f'<text x="{middle}" y="{plot - h + 10}" class="chart-count" text-anchor="middle">{item.value}</text>'
            if width_each >= 20 and item.value
            else ""
        )
        tick = (
            f'<text x="{middle}" y="{height - 4}" class="chart-tick" text-anchor="middle" aria-hidden="true">'
            f"{escape(item.label)}</text>"
            if n % tick_every == 0
            else ""
        )
        title = escape(item.title or f"{item.label}: {item.value}")
        parts.append(
            f'<a href="{escape(item.href)}"><title>{title}</title><rect class="chart-bar" x="{x + 1}" '
            f'y="{14 + plot - h}" width="{max(1, width_each - 2)}" height="{h}"/>{count}</a>'
        )
        parts.append(tick)
    pad = max(0, ceil((widest - width_each) / 2))  # room for the first and last labels, centred under their bars
    return mark_safe(  # every text above went through escape()
        f'<svg class="chart" viewBox="{-pad} 0 {width + 2 * pad} {height + 14}" role="{_role(parts)}" '
        f'aria-label="{escape(label)}" preserveAspectRatio="xMinYMin meet">{"".join(parts)}</svg>'
    )


def bars_for_both_widths(items: list[Bar], *, label: str, wide: int, tick_every: int = 1) -> SafeString:
    """The chart twice, drawn for a wide box and for a phone's: app.css shows the one that fits, so axis labels
    keep a readable size and their room at 1280 and at 375 px (a single drawing scaled down to a phone shrinks
    its text to 4 px)."""
    big = bars(items, label=label, fit=wide, tick_every=tick_every).replace('class="chart"', 'class="chart chart-wide"')
    small = bars(items, label=label, fit=PHONE_WIDTH, tick_every=tick_every).replace(
        'class="chart"', 'class="chart chart-narrow"'
    )
    return mark_safe(big + small)  # both made of escaped text by bars()


# The colour of each outcome, as its badge has it (calls.templatetags.calls_tags): answered green, on its way blue,
# not reached amber, failed red, unknown grey. The report's chart and its table (the legend) use the same class.
OUTCOME_LOOK = {
    "answered": "ok",
    "in_progress": "live",
    "not_confirmed": "warn",
    "agent_no_answer": "warn",
    "no_answer": "warn",
    "busy": "warn",
    "failed": "danger",
    "unknown": "none",
    "gone": "none",  # VCC no longer knows the call: how it went is not known
}


@dataclass
class Share:
    label: str
    value: int
    href: str
    look: str  # a value of OUTCOME_LOOK: the fill's class is share-<look>


def shares(items: list[Share], *, label: str) -> SafeString:
    """One bar split into each item's share of the whole, coloured by its look, each part a link."""
    total = sum(i.value for i in items)
    if not total:
        return mark_safe("")
    parts, x = [], 0.0
    for item in items:
        w = 1000 * item.value / total
        title = escape(f"{item.label}: {item.value} ({item.value / total:.0%})")
        parts.append(
            f'<a href="{escape(item.href)}"><title>{title}</title><rect class="share share-{escape(item.look)}" '
            f'x="{x:.1f}" y="0" width="{w:.1f}" height="20"/></a>'
        )
        x += w
    return mark_safe(  # every text above went through escape()
        f'<svg class="chart shares" viewBox="0 0 1000 20" preserveAspectRatio="none" role="{_role(parts)}" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )


def heatmap(rows: list[tuple[str, list[Bar]]], columns: list[str], *, label: str) -> SafeString:
    """A grid of linked cells, darker for more calls: one row per agent, one column per day, week or month."""
    cell, left, head = 14, 150, 18
    wide = max(cell, min(48, 700 // max(1, len(columns))))  # few columns (months) get wider cells
    label_every = max(1, -(-45 // wide))  # a label every ~45 px
    top = max([b.value for _, cells in rows for b in cells] + [1])
    parts = [
        f'<text x="{left + c * wide}" y="12" class="chart-tick" aria-hidden="true">{escape(name)}</text>'
        for c, name in enumerate(columns)
        if c % label_every == 0
    ]
    for r, (name, cells) in enumerate(rows):
        y = head + r * cell
        parts.append(f'<text x="0" y="{y + cell - 3}" class="chart-tick" aria-hidden="true">{escape(name[:24])}</text>')
        for c, bar in enumerate(cells):
            level = 0 if not bar.value else 1 + min(4, 5 * bar.value // (top + 1))
            parts.append(
                f'<a href="{escape(bar.href)}"><title>{escape(bar.title)}</title><rect class="heat heat-{level}" '
                f'x="{left + c * wide}" y="{y}" width="{wide - 2}" height="{cell - 2}"/></a>'
            )
    width, tall = left + max(1, len(columns)) * wide, head + max(1, len(rows)) * cell
    return mark_safe(  # every text above went through escape()
        # Drawn at its own size (width and height), not stretched to the box: its labels stay 11 px at every
        # width, and on a phone it scrolls sideways in its .chart-scroll box.
        f'<svg class="chart heatmap" viewBox="0 0 {width} {tall}" width="{width}" height="{tall}" '
        f'role="{_role(parts)}" aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )

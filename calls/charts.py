"""Small server-rendered SVG charts: no build step, no script, and nothing the strict CSP refuses.

Colours and sizes come from classes in app.css and SVG presentation attributes, never `style=`. Every bar or
cell is a link to the calls behind it and carries its number in a <title> (and as text where it fits).
A year's heat map has thousands of cells, so the markup is built with plain strings, escaping every text.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe


@dataclass
class Bar:
    label: str
    value: int
    href: str
    title: str = ""


def bars(items: list[Bar], *, label: str, height: int = 160, tick_every: int = 1) -> SafeString:
    """A column chart: one linked bar per item, labels under every tick_every-th bar."""
    width_each = 24 if len(items) <= 40 else max(3, 960 // max(1, len(items)))
    width = max(1, len(items)) * width_each
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
            f'<text x="{middle}" y="{height - 4}" class="chart-tick" text-anchor="middle">{escape(item.label)}</text>'
            if n % tick_every == 0
            else ""
        )
        title = escape(item.title or f"{item.label}: {item.value}")
        parts.append(
            f'<a href="{escape(item.href)}"><title>{title}</title><rect class="chart-bar" x="{x + 1}" '
            f'y="{14 + plot - h}" width="{max(1, width_each - 2)}" height="{h}"/>{count}</a>{tick}'
        )
    return mark_safe(  # every text above went through escape()
        f'<svg class="chart" viewBox="0 0 {width} {height + 14}" role="img" aria-label="{escape(label)}" '
        f'preserveAspectRatio="xMinYMin meet">{"".join(parts)}</svg>'
    )


def heatmap(rows: list[tuple[str, list[Bar]]], columns: list[str], *, label: str) -> SafeString:
    """A grid of linked cells, darker for more calls: one row per agent, one column per day, week or month."""
    cell, left, head = 14, 150, 18
    wide = max(cell, min(48, 700 // max(1, len(columns))))  # few columns (months) get wider cells
    label_every = max(1, -(-45 // wide))  # a label every ~45 px
    top = max([b.value for _, cells in rows for b in cells] + [1])
    parts = [
        f'<text x="{left + c * wide}" y="12" class="chart-tick">{escape(name)}</text>'
        for c, name in enumerate(columns)
        if c % label_every == 0
    ]
    for r, (name, cells) in enumerate(rows):
        y = head + r * cell
        parts.append(f'<text x="0" y="{y + cell - 3}" class="chart-tick">{escape(name[:24])}</text>')
        for c, bar in enumerate(cells):
            level = 0 if not bar.value else 1 + min(4, 5 * bar.value // (top + 1))
            parts.append(
                f'<a href="{escape(bar.href)}"><title>{escape(bar.title)}</title><rect class="heat heat-{level}" '
                f'x="{left + c * wide}" y="{y}" width="{wide - 2}" height="{cell - 2}"/></a>'
            )
    width = left + max(1, len(columns)) * wide
    return mark_safe(  # every text above went through escape()
        f'<svg class="chart heatmap" viewBox="0 0 {width} {head + max(1, len(rows)) * cell}" role="img" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )

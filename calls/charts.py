"""Small server-rendered SVG charts: no build step, no script, and nothing the strict CSP refuses.

Colours and sizes come from classes in app.css and SVG presentation attributes, never `style=`. Every bar or
cell is a link to the calls behind it and carries its number in a <title> (and as text where it fits).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
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
        count = format_html(
            '<text x="{}" y="{}" class="chart-count" text-anchor="middle">{}</text>',
            x + width_each / 2,
            plot - h + 14 - 4,
            item.value,
        ) if width_each >= 20 and item.value else ""  # fmt: skip
        tick = (
            format_html(
                '<text x="{}" y="{}" class="chart-tick" text-anchor="middle">{}</text>',
                x + width_each / 2,
                height - 4,
                item.label,
            )
            if n % tick_every == 0
            else ""
        )
        parts.append(
            format_html(
                '<a href="{}"><title>{}</title><rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"/>{}</a>{}',
                item.href,
                item.title or f"{item.label}: {item.value}",
                x + 1,
                14 + plot - h,
                max(1, width_each - 2),
                h,
                count,
                tick,
            )
        )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" preserveAspectRatio="xMinYMin meet">'
        "{}</svg>",
        width,
        height + 14,
        label,
        mark_safe("".join(parts)),  # each part was built with format_html
    )


def heatmap(rows: list[tuple[str, list[Bar]]], columns: list[str], *, label: str) -> SafeString:
    """A grid of linked cells, darker for more calls: one row per agent, one column per day or week."""
    cell, left, head = 14, 150, 18
    wide = max(cell, min(48, 700 // max(1, len(columns))))  # few columns (months) get wider cells
    label_every = max(1, -(-45 // wide))  # a label every ~45 px
    top = max([b.value for _, cells in rows for b in cells] + [1])
    parts = []
    for c, name in enumerate(columns):
        if c % label_every == 0:
            parts.append(format_html('<text x="{}" y="12" class="chart-tick">{}</text>', left + c * wide, name))
    for r, (name, cells) in enumerate(rows):
        y = head + r * cell
        parts.append(format_html('<text x="0" y="{}" class="chart-tick">{}</text>', y + cell - 3, name[:24]))
        for c, bar in enumerate(cells):
            level = 0 if not bar.value else 1 + min(4, 5 * bar.value // (top + 1))
            parts.append(
                format_html(
                    '<a href="{}"><title>{}</title>'
                    '<rect class="heat heat-{}" x="{}" y="{}" width="{}" height="{}"/></a>',
                    bar.href,
                    bar.title,
                    level,
                    left + c * wide,
                    y,
                    wide - 2,
                    cell - 2,
                )
            )
    width = left + max(1, len(columns)) * wide
    return format_html(
        '<svg class="chart heatmap" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        width,
        head + max(1, len(rows)) * cell,
        label,
        format_html_join("", "{}", ((p,) for p in parts)),
    )

"""Bar charts as plain SVG geometry, drawn by the template (no JavaScript, no CDN)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    horizontal: bool
    max_value: int
    title: str

    @property
    def empty(self) -> bool:
        return not self.bars or self.max_value == 0


def columns(
    title: str, items: list[tuple[str, int]], *, width: int = 640, height: int = 220
) -> Chart:
    """Vertical bars (e.g. one per day), labels under the bars, values above them."""
    top, bottom = 20, 36
    peak = max((v for _, v in items), default=0)
    slot = width / max(1, len(items))
    bars = []
    for i, (label, value) in enumerate(items):
        h = (height - top - bottom) * (value / peak) if peak else 0
        bars.append(Bar(label, value, i * slot + slot * 0.15, height - bottom - h, slot * 0.7, h))
    return Chart(width, height, bars, False, peak, title)


def rows(
    title: str,
    items: list[tuple[str, int]],
    *,
    width: int = 640,
    row: int = 26,
    label_width: int = 170,
) -> Chart:
    """Horizontal bars (e.g. one per category), labels on the left, values at the bar end."""
    peak = max((v for _, v in items), default=0)
    usable = width - label_width - 50
    bars = [
        Bar(label, value, label_width, i * row + 4, usable * (value / peak) if peak else 0, row - 8)
        for i, (label, value) in enumerate(items)
    ]
    return Chart(width, max(row, row * len(items)) + 8, bars, True, peak, title)


__all__ = ["Bar", "Chart", "columns", "rows"]

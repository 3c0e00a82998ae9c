"""Mermaid ``xychart-beta`` charts, which GitHub renders inside comments.

Syntax: mermaid.js.org/syntax/xyChart.html. Category labels are quoted
strings, so a label is stripped of quotes, brackets and newlines first.
"""

from __future__ import annotations

from collections.abc import Sequence

_UNSAFE = str.maketrans({'"': "'", "[": "(", "]": ")", "\n": " ", "\r": " ", "`": "'", ";": ",", "<": "(", ">": ")"})


def _label(text: object, limit: int = 24) -> str:
    raw = " ".join(str(text).translate(_UNSAFE).split())
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    return f'"{raw}"'


def _title(text: str) -> str:
    return _label(text, limit=80)


def _values(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}".rstrip("0").rstrip(".") if v != 0 else "0" for v in values) + "]"


def _range(values: Sequence[float], *, floor: float | None = None, ceiling: float | None = None) -> tuple[float, float]:
    low, high = min(values), max(values)
    pad = max((high - low) * 0.1, 0.01)
    low, high = low - pad, high + pad
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return round(low, 3), round(high, 3)


def line_chart(title: str, x_title: str, x: Sequence[object], y_title: str, y: Sequence[float]) -> str:
    """One line over categorical x values (e.g. training-set sizes)."""
    low, high = _range(y, floor=0.0, ceiling=1.0 if max(y) <= 1 else None)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f"    title {_title(title)}",
            f"    x-axis {_title(x_title)} [{', '.join(_label(v) for v in x)}]",
            f"    y-axis {_title(y_title)} {low} --> {high}",
            f"    line {_values(y)}",
            "```",
        ]
    )


def bar_chart(title: str, categories: Sequence[object], y_title: str, y: Sequence[float]) -> str:
    """Bars per category; the axis spans zero so negative deltas hang below it."""
    low, high = _range([*y, 0.0])
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f"    title {_title(title)}",
            f"    x-axis [{', '.join(_label(c) for c in categories)}]",
            f"    y-axis {_title(y_title)} {low} --> {high}",
            f"    bar {_values(y)}",
            f"    line {_values([0.0] * len(y))}",  # bars start at the axis floor; this line marks zero
            "```",
        ]
    )

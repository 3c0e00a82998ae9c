"""Markdown building blocks: escaping untrusted text, tables, numbers, collapsible blocks.

Texts from data sets and label names reach a PR comment, so every such string
is escaped: HTML is neutralised (no ``</details>`` or ``<!--`` breaking the
layout), ``@`` cannot mention anyone, ``[...]`` cannot form links and ``|``
cannot break a table.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

_INLINE = str.maketrans(
    {"@": "&#64;", "[": "\\[", "]": "\\]", "*": "\\*", "_": "\\_", "`": "\\`", "~": "\\~", "#": "&#35;"}
)


def inline(text: object, *, limit: int | None = None) -> str:
    """``text`` as inert inline markdown on one line, cut to ``limit`` characters."""
    raw = " ".join(str(text).split())
    if limit is not None and len(raw) > limit:
        raw = raw[: max(limit - 1, 0)] + "…"
    return html.escape(raw, quote=False).translate(_INLINE).replace("|", "\\|")


def code(text: object, *, limit: int = 80) -> str:
    """``text`` in a code span (label names, run ids): literal, table-safe."""
    raw = " ".join(str(text).split()).replace("`", "'")
    if len(raw) > limit:
        raw = raw[: limit - 1] + "…"
    return f"`{raw.replace('|', chr(92) + '|')}`"


def link(label: object, url: str) -> str | None:
    """A markdown link ``[label](<url>)``, or None for a URL that is not http(s). Every character a link could end
    on or escape through (whitespace, a line break, '<', '>', quotes, backticks, anything outside ASCII) is
    percent-encoded: a newline in a URL ended the link, and '<!--' after it hid the rest of a PR comment."""
    import urllib.parse

    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    return f"[{inline(label)}](<{urllib.parse.quote(url, safe=_URL_SAFE)}>)"


_URL_SAFE = ":/?#[]!$&'()*+,;=%~-._"  # RFC 3986's reserved and unreserved characters but '@' (a mention), kept


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, align: str | None = None) -> str:
    """A GitHub table; ``align`` is one of l/r/c per column (default left, numbers right by caller)."""
    align = align or "l" * len(headers)
    rule = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def details(summary: str, body: str, *, open_: bool = False) -> str:
    """A collapsible block; blank lines around the body so markdown inside it renders."""
    return f"<details{' open' if open_ else ''}>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"


def num(value: float | int | None, *, digits: int = 3) -> str:
    """A number for a table: fractions to ``digits`` places, large values with separators, None as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    if abs(value) <= 1:
        return f"{value:.{digits}f}"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"


def signed(delta: float | None, *, digits: int = 3) -> str:
    """A difference with its sign always shown: ``+0.012``, ``-0.004``, ``±0.000``."""
    if delta is None or math.isnan(delta):
        return "–"
    text = f"{abs(delta):.{digits}f}"
    if float(text) == 0:
        return f"±{text}"
    return ("+" if delta > 0 else "-") + text


def interval(low: float | None, high: float | None, *, digits: int = 3) -> str:
    if low is None or high is None:
        return "–"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def megabytes(size_bytes: int | None) -> str:
    return "–" if size_bytes is None else f"{size_bytes / 1e6:.1f} MB"

"""Text helpers shared by every renderer. Pure.

Feed text is hostile: these make it one line where one line is expected,
bounded, with highlights as (piece, highlighted) runs that each renderer
escapes for its own markup, and links only when they are web links.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from urllib.parse import urlsplit

ELLIPSIS = "…"
# Summaries longer than this are cut at a word boundary: an alert should say
# what the story is about, the link has the rest.
SUMMARY_MAX = 600
# Mail clients show ~80 characters of a subject; 200 keeps long headlines
# readable without producing multi-line folded monsters.
HEADLINE_MAX = 200
# In the text version, highlights are wrapped in guillemets: they survive
# every mail client and terminal and cannot be mistaken for Markdown.
TEXT_MARK = ("«", "»")

# C0/C1 controls and Unicode line/paragraph separators: each could start a
# new line (or header) where a renderer expects one line.
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Bidi overrides/isolates can make a title display as something it is not.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_PUNCT_BEFORE_ELLIPSIS = ",;:-–—"


def truncate(text: str, n: int) -> str:
    """Cut ``text`` to at most ``n`` characters, ending with an ellipsis.

    Cuts at the last word boundary when that keeps at least half the budget
    (texts without spaces, e.g. Chinese, are cut mid-run), never between a
    character and its combining mark, and drops trailing punctuation.
    """
    if len(text) <= n:
        return text
    if n <= 0:
        return ""
    if n == 1:
        return ELLIPSIS
    budget = n - 1  # room for the ellipsis
    cut = text[:budget]
    if not text[budget].isspace():
        space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
        if space >= budget // 2:
            cut = cut[:space]
    while cut and unicodedata.combining(text[len(cut)]):
        cut = cut[:-1]
    cut = cut.rstrip().rstrip(_PUNCT_BEFORE_ELLIPSIS).rstrip()
    return (cut or text[:budget]) + ELLIPSIS


def fit(
    text: str,
    limit: int,
    escape: Callable[[str], str] = str,
    cost: Callable[[str], int] = len,
) -> str:
    """``text`` escaped, cut at a word with an ellipsis so that its escaped
    form costs at most ``limit``: for fields with their own limit (a
    header block, an embed title), where escaping can double the length."""
    whole = escape(text)
    if cost(whole) <= limit:
        return whole
    # The longest cut whose escaped form fits (escaping only grows a text,
    # so the cost is monotone in the cut's length).
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(escape(truncate(text, mid))) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return escape(truncate(text, lo))


def one_line(text: str) -> str:
    """Fold control characters and line separators to spaces, drop bidi
    controls, collapse whitespace: safe for a subject, a header or a title."""
    text = _BIDI_CONTROLS.sub("", _LINE_BREAKERS.sub(" ", text))
    return " ".join(text.split())


def keep_offsets(text: str) -> str:
    """Like ``one_line`` but one character for one, so highlight spans stay valid."""
    return _LINE_BREAKERS.sub(" ", _BIDI_CONTROLS.sub(" ", text))


def highlight_segments(text: str, spans: Sequence[tuple[int, int]]) -> list[tuple[str, bool]]:
    """Split ``text`` into (piece, highlighted) runs.

    Spans are clamped to the text; overlapping or touching spans merge, empty
    or inverted ones are ignored.
    """
    size = len(text)
    clamped = sorted((max(0, s), min(size, e)) for s, e in spans)
    merged: list[tuple[int, int]] = []
    for start, end in clamped:
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for start, end in merged:
        if start > pos:
            pieces.append((text[pos:start], False))
        pieces.append((text[start:end], True))
        pos = end
    if pos < size:
        pieces.append((text[pos:], False))
    return pieces


def safe_href(link: str) -> str | None:
    """The link if it is http(s), else None: a feed may carry ``javascript:``."""
    try:
        parts = urlsplit(link.strip())
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return link.strip()
    return None


def when(moment: datetime | None, tz: tzinfo = UTC) -> str:
    """A time for people, on the configured wall clock ("2016-06-16 09:12 KST")."""
    if moment is None:
        return ""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")

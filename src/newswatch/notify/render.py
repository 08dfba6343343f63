"""Render an alert for people (text + HTML) and for machines (a JSON payload).

Pure: the same Alert always renders to the same Message. Feed text is hostile,
so the HTML template autoescapes everything, and highlights are applied by
splitting the snippet into pieces that are each escaped on their own; raw
feed text is never marked up. Templates live in ``newswatch/templates``.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

import jinja2

from newswatch.model import Alert, Message

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

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("newswatch", "templates"),
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html", "html.j2"), default_for_string=False, default=False
    ),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)

# C0/C1 controls and Unicode line/paragraph separators: each could start a
# new line (or header) where a renderer expects one line.
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Bidi overrides/isolates can make a title display as something it is not.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_PUNCT_BEFORE_ELLIPSIS = ",;:-–—"


# --------------------------------------------------------------------------- text helpers


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


def one_line(text: str) -> str:
    """Fold control characters and line separators to spaces, drop bidi
    controls, collapse whitespace: safe for a subject, a header or a title."""
    text = _BIDI_CONTROLS.sub("", _LINE_BREAKERS.sub(" ", text))
    return " ".join(text.split())


def _keep_offsets(text: str) -> str:
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


def delivery_key(alert: Alert) -> str:
    """Stable id of one delivery: the same across retries, distinct per
    (rule, story, channel). Used as Message-ID, idempotency key and payload id."""
    story = f"{alert.rule}\0{alert.article.story_key}\0{alert.channel}"
    digest = hashlib.sha256(story.encode()).hexdigest()[:16]
    return f"{alert.outbox_id}.{digest}"


def _when(moment: datetime | None, tz: tzinfo = UTC) -> str:
    """A time for people, on the configured wall clock ("2016-06-16 09:12 KST")."""
    if moment is None:
        return ""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def headline(alert: Alert) -> str:
    """One line naming the story: its title, else its link."""
    title = one_line(alert.article.title) or one_line(alert.article.link) or "(untitled)"
    return truncate(title, HEADLINE_MAX)


# --------------------------------------------------------------------------- rendering


def _context(alert: Alert, tz: tzinfo) -> dict[str, Any]:
    article = alert.article
    snippet = _keep_offsets(alert.explanation.snippet)
    segments = highlight_segments(snippet, alert.explanation.highlights)
    if not snippet.strip():
        segments = []
    open_mark, close_mark = TEXT_MARK
    snippet_text = "".join(f"{open_mark}{p}{close_mark}" if m else p for p, m in segments)
    return {
        "rule": one_line(alert.rule),
        "title": headline(alert),
        "link": one_line(article.link),
        "href": safe_href(article.link),
        "source": one_line(article.source),
        "published": _when(article.published, tz),
        "matched_at": _when(alert.matched_at, tz),
        "terms": [one_line(t) for t in alert.explanation.terms],
        "segments": segments,
        "snippet_text": " ".join(snippet_text.split()),
        "summary": truncate(" ".join(article.summary.split()), SUMMARY_MAX),
    }


def render_alert(alert: Alert, tz: tzinfo = UTC) -> Message:
    """Subject ``<rule>: <headline>``, a plain text body and an HTML body;
    times shown in ``tz`` (the configuration's `timezone`)."""
    context = _context(alert, tz)
    subject = f"{context['rule']}: {context['title']}"
    context["subject"] = subject
    # Exactly one final newline, whatever the template's block tags left.
    text = _TEMPLATES.get_template("alert.txt.j2").render(context).rstrip("\n") + "\n"
    html = _TEMPLATES.get_template("alert.html.j2").render(context).rstrip("\n") + "\n"
    return Message(subject=subject, text=text, html=html)


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The JSON object sent to webhooks and printed by ``console`` in json format."""
    article = alert.article
    return {
        "id": delivery_key(alert),
        "outbox_id": alert.outbox_id,
        "rule": alert.rule,
        "channel": alert.channel,
        "title": article.title,
        "link": article.link,
        "source": article.source,
        "published": article.published.isoformat() if article.published else None,
        "summary": truncate(" ".join(article.summary.split()), SUMMARY_MAX),
        "matched_terms": list(alert.explanation.terms),
        "snippet": alert.explanation.snippet,
        "highlights": [list(span) for span in alert.explanation.highlights],
        "matched_at": alert.matched_at.isoformat(),
    }

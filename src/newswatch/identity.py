"""Story identity keys: the same story under another GUID, another scheme or
in another feed shares one of these. Pure.

- ``u:`` the canonical URL without its scheme (http and https are one page;
  host case is already folded by ``canonical_url``);
- ``t:`` the normalized title and the publication date, for entries whose
  URL changed too (a CMS migration). Only for titles long enough to name one
  story: "Morning briefing" on one day is many stories.

The store keeps them unique (``story_keys``): two copies arriving at once on
two replicas found one story.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime
from urllib.parse import urlsplit

from newswatch.model import Article

# A title shorter than this (in words) is not specific enough to be an identity.
TITLE_KEY_MIN_WORDS = 5
TITLE_KEY_MIN_CHARS = 24

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def url_key(canonical_url: str) -> str | None:
    """``u:<hash>`` of the URL without its scheme, or None for no URL."""
    if not canonical_url:
        return None
    try:
        parts = urlsplit(canonical_url)
    except ValueError:
        return None
    rest = canonical_url[len(parts.scheme) + 1 :] if parts.scheme else canonical_url
    rest = rest.removeprefix("//")
    return "u:" + _digest(rest)


def normalize_title(title: str) -> str:
    """Case, accents, punctuation and spacing folded: the words only."""
    text = unicodedata.normalize("NFKD", title.casefold())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return " ".join(_NOT_WORD.sub(" ", text).split())


def title_key(title: str, published: datetime | None) -> str | None:
    """``t:<hash>`` of the normalized title and the UTC publication date."""
    if published is None:
        return None
    words = normalize_title(title)
    if len(words) < TITLE_KEY_MIN_CHARS or len(words.split()) < TITLE_KEY_MIN_WORDS:
        return None
    return "t:" + _digest(f"{words}\0{published.date().isoformat()}")


def identity_keys(article: Article) -> tuple[str, ...]:
    keys = [url_key(article.canonical_url), title_key(article.title, article.published)]
    found = tuple(k for k in keys if k is not None)
    return found or (f"s:{article.story_key}",)

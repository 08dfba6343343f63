"""Optional full text (``full_text: true``): each new entry's article page
is fetched (the fetcher's slots, deadline, size cap and SSRF guard) and its
main text extracted with trafilatura, so rules match the article and not
only its teaser. Any failure (no trafilatura, a fetch error, nothing
extracted) keeps the feed's own summary."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Final

from newswatch.feeds.fetch import Fetcher
from newswatch.feeds.normalize import MAX_FIELD_CHARS
from newswatch.poll.decide import Document, Fresh

log = logging.getLogger("newswatch.poll")

# Article pages are bigger than feeds but rarely past this; the cap bounds
# what one entry can make us hold.
PAGE_MAX_BYTES: Final = 2 * 1024 * 1024
# Pages fetched per feed per poll: a feed's first poll may list 100 entries,
# and only new entries (which alert) need their text.
MAX_PAGES_PER_POLL: Final = 20


def extract_main_text(html: bytes, url: str) -> str | None:
    """The page's main text, or None (trafilatura missing, or found nothing)."""
    try:
        import trafilatura
    except ImportError:
        return None
    try:
        text = trafilatura.extract(html.decode("utf-8", "replace"), url=url, include_comments=False)
    except Exception:  # a hostile page must not fail the feed
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    return text.strip()[:MAX_FIELD_CHARS]


async def with_full_text(fetcher: Fetcher, doc: Document, *, allow_private: bool) -> Document:
    """``doc`` with the new entries' content replaced by their page's text."""
    wanted = [i for i, f in enumerate(doc.fresh) if f.kind == "new" and f.article.link]
    wanted = wanted[:MAX_PAGES_PER_POLL]
    if not wanted:
        return doc

    async def one(fresh: Fresh) -> Fresh:
        page = await fetcher.fetch_page(
            fresh.article.link, allow_private=allow_private, max_bytes=PAGE_MAX_BYTES
        )
        if page.error is not None or not page.body:
            log.info("full text of %s not fetched: %s", fresh.article.link[:120], page.error)
            return fresh
        text = await asyncio.to_thread(extract_main_text, page.body, page.url)
        if text is None:
            return fresh
        return dataclasses.replace(fresh, article=dataclasses.replace(fresh.article, content=text))

    done = await asyncio.gather(*(one(doc.fresh[i]) for i in wanted))
    fresh = list(doc.fresh)
    for i, value in zip(wanted, done, strict=True):
        fresh[i] = value
    return dataclasses.replace(doc, fresh=tuple(fresh))

"""Test data: the seed article and a small RSS builder."""

from __future__ import annotations

import email.utils
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

from newswatch.feeds.normalize import html_to_text

REPO = Path(__file__).resolve().parents[1]
_SEED_NAME = Path("seeds") / "000_eaa30dac2a1dc43c.txt"


def _find_seed() -> Path:
    """The shared seed article: in $NEWSWATCH_SHARED, beside this checkout
    (../shared) or at /work/shared; the first that exists (else the first)."""
    places = [Path(os.environ["NEWSWATCH_SHARED"])] if os.environ.get("NEWSWATCH_SHARED") else []
    places += [REPO.parent / "shared", Path("/work/shared")]
    found = [place / _SEED_NAME for place in places if (place / _SEED_NAME).is_file()]
    return found[0] if found else places[0] / _SEED_NAME


SEED_PATH = _find_seed()
SEED_TITLE = "THAAD was not issue during S. Korea-Russia talks: official"
SEED_LINK = "http://www.koreaherald.com/view.php?ud=20160616000588"


def seed_body() -> str:
    """The seed article's body text, from the shared seed or the bundled sample."""
    if SEED_PATH.is_file():
        text = SEED_PATH.read_text(encoding="utf-8")
        return text.split("Link copied", 1)[1].strip()
    # The bundled sample holds the same article as HTML paragraphs.
    sample = (REPO / "config" / "feeds" / "sample.xml").read_text(encoding="utf-8")
    return html_to_text(sample.split("<![CDATA[", 1)[1].split("]]>", 1)[0])


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    guid: str | None = None
    body: str = ""
    published: datetime = datetime(2016, 6, 16, 0, 12, tzinfo=UTC)


def seed_item() -> Item:
    return Item(title=SEED_TITLE, link=SEED_LINK, guid=SEED_LINK, body=seed_body())


def rss(*items: Item, title: str = "Test feed") -> bytes:
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">',
        f"<channel><title>{escape(title)}</title><link>http://example.org/</link>",
    ]
    for it in items:
        guid = f"<guid isPermaLink='false'>{escape(it.guid)}</guid>" if it.guid else ""
        out.append(
            f"<item><title>{escape(it.title)}</title><link>{escape(it.link)}</link>{guid}"
            f"<pubDate>{email.utils.format_datetime(it.published)}</pubDate>"
            f"<description>{escape(it.body)}</description></item>"
        )
    out.append("</channel></rss>")
    return "".join(out).encode("utf-8")

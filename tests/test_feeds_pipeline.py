"""fetch -> parse -> normalize over a real server, with the seed article."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from feedserver import FeedServer
from newswatch.feeds import Fetcher, normalize_feed, parse_feed_async
from samples import SEED_PATH

SEED = SEED_PATH
SEED_TITLE = "THAAD was not issue during S. Korea-Russia talks: official"


def seed_parts() -> tuple[str, list[str]]:
    """The seed page's headline and its article paragraphs."""
    lines = [line.strip() for line in SEED.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    start = next(i for i, line in enumerate(lines) if line.startswith("The top diplomats"))
    return lines[2], lines[start:]


def seed_rss(title: str, paragraphs: list[str]) -> bytes:
    """An RSS item as the Korea Herald would publish it: escaped HTML content."""
    content = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
  <title>The Korea Herald - National</title>
  <link>https://www.koreaherald.com/</link>
  <item>
    <title>{escape(title)}</title>
    <link>/view.php?ud=20160616000123&amp;utm_source=rss&amp;utm_medium=feed</link>
    <guid isPermaLink="false">20160616000123</guid>
    <author>임정요</author>
    <category>National</category>
    <description>{escape(content[:300])}</description>
    <content:encoded>{escape(content)}</content:encoded>
    <pubDate>Thu, 16 Jun 2016 09:12:00 +0900</pubDate>
  </item>
</channel>
</rss>
""".encode()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.mark.skipif(not SEED.exists(), reason="seed article not available")
@pytest.mark.parametrize("gzip", [False, True])
async def test_seed_article_end_to_end(server: FeedServer, gzip: bool) -> None:
    title, paragraphs = seed_parts()
    assert title == SEED_TITLE
    server.route("/rss/national.xml", body=seed_rss(title, paragraphs), etag='"1"', gzip=gzip)
    url = server.url("/rss/national.xml")

    async with Fetcher(concurrency=4, per_host=2, timeout=5.0, max_bytes=1 << 20) as fetcher:
        fetched = await fetcher.fetch(url, url)
        assert fetched.ok
        assert fetched.body is not None
        parsed = await parse_feed_async(
            fetched.body, url=fetched.url, content_type=fetched.content_type
        )
        (article,) = normalize_feed(
            parsed, feed_key=url, source="Korea Herald", tags=("korea",), base_url=fetched.url
        )
        again = await fetcher.fetch(url, url, etag=fetched.etag)
    assert again.not_modified

    assert parsed.warning is None
    assert article.title == SEED_TITLE
    assert article.content.split("\n") == paragraphs
    assert "Russia" in article.content
    assert "North Korea" in article.content
    assert "<p>" not in article.content
    assert "&quot;" not in article.content
    assert '"(The Russian side) mentioned a confrontational structure' in article.content
    assert article.summary.startswith("The top diplomats of South Korea and Russia")
    assert article.author == "임정요"
    assert article.categories == ("National",)
    assert article.published == datetime(2016, 6, 16, 0, 12, tzinfo=UTC)
    assert article.entry_key == "20160616000123"
    assert article.link == server.url("/view.php?ud=20160616000123&utm_source=rss&utm_medium=feed")
    assert article.canonical_url == server.url("/view.php?ud=20160616000123")
    assert (article.source, article.tags) == ("Korea Herald", ("korea",))


async def test_local_file_end_to_end(tmp_path: Path) -> None:
    feed = tmp_path / "sample.xml"
    feed.write_bytes(seed_rss("Local &amp; test", ["Body with <b>markup</b>."]))
    async with Fetcher(concurrency=1, per_host=1, timeout=5.0, max_bytes=1 << 20) as fetcher:
        fetched = await fetcher.fetch(feed.as_uri(), str(feed))
    assert fetched.body is not None
    parsed = await parse_feed_async(fetched.body, url=fetched.url)
    (article,) = normalize_feed(
        parsed, feed_key=feed.as_uri(), source="local", base_url=fetched.url
    )
    # RSS titles are HTML in practice; an entity escaped twice is still unescaped.
    assert article.title == "Local & test"
    # Markup that was text in the HTML (escaped) stays text.
    assert article.content == "Body with <b>markup</b>."
    # A relative link in a local file is not a web link: it is dropped, not made file://.
    assert article.link == ""

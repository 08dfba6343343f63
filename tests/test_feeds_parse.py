"""Parsing real feed documents: RSS 2.0, Atom, RDF, broken XML, not-feeds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from feedserver import FeedServer
from newswatch.feeds.parse import FeedParseError, parse_feed, parse_feed_async

FEED_URL = "https://kh.example/rss/national.xml"

RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Korea Herald National</title>
  <link>https://kh.example/</link>
  <item>
    <title>Seoul &amp; Moscow talk THAAD</title>
    <link>https://kh.example/view.php?ud=1&amp;utm_source=rss</link>
    <guid isPermaLink="false">kh-1</guid>
    <description>&lt;p&gt;Short &lt;b&gt;summary&lt;/b&gt;&lt;/p&gt;</description>
    <content:encoded><![CDATA[<p>The <em>full</em> story, much longer.</p>]]></content:encoded>
    <dc:creator>Yonhap</dc:creator>
    <category>North Korea</category>
    <category>Diplomacy</category>
    <pubDate>Thu, 16 Jun 2016 09:12:00 +0900</pubDate>
  </item>
  <item>
    <title>Relative link</title>
    <link>/view.php?ud=2</link>
    <description>plain</description>
  </item>
</channel>
</rss>
"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example/">
  <title>Atom News</title>
  <link href="https://atom.example/"/>
  <id>urn:uuid:feed</id>
  <updated>2024-03-10T08:00:00+09:00</updated>
  <entry>
    <title type="html">Russia &amp;amp; &lt;i&gt;North Korea&lt;/i&gt;</title>
    <link rel="alternate" href="/2024/03/10/story"/>
    <id>urn:uuid:entry-1</id>
    <updated>2024-03-10T08:00:00+09:00</updated>
    <published>2024-03-09T23:30:00-05:00</published>
    <author><name>Jane Reporter</name></author>
    <category term="world"/>
    <summary type="html">&lt;p&gt;Summary&lt;/p&gt;</summary>
    <content type="xhtml">
      <div xmlns="http://www.w3.org/1999/xhtml"><p>Body in <b>XHTML</b>.</p></div>
    </content>
  </entry>
  <entry>
    <title>Only updated</title>
    <link href="https://atom.example/2"/>
    <id>urn:uuid:entry-2</id>
    <updated>2024-03-10T12:00:00Z</updated>
  </entry>
</feed>
"""

RDF = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://rdf.example/">
    <title>RDF News</title>
    <link>https://rdf.example/</link>
    <items><rdf:Seq><rdf:li rdf:resource="https://rdf.example/a"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://rdf.example/a">
    <title>RDF item</title>
    <link>https://rdf.example/a</link>
    <description>RDF description</description>
    <dc:date>2016-06-16T09:12:00+09:00</dc:date>
    <dc:subject>politics</dc:subject>
  </item>
</rdf:RDF>
"""

MALFORMED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Broken</title>
<item><title>First</title><link>https://b.example/1</link></item>
<item><title>Fish & chips</title><link>https://b.example/2</link></item>
<item><title>Third</title><description>unclosed <b>bold</description></item>
</channel></rss>
"""

HTML_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Korea Herald</title>
<link rel="alternate" type="application/rss+xml" href="/rss"></head>
<body><h1>Latest news</h1><p>Not a feed.</p></body></html>
"""


def test_rss20() -> None:
    feed = parse_feed(RSS, url=FEED_URL, content_type="application/rss+xml; charset=utf-8")
    assert feed.title == "Korea Herald National"
    assert feed.link == "https://kh.example/"
    assert feed.warning is None
    first, second = feed.entries
    assert first.guid == "kh-1"
    assert first.title == "Seoul & Moscow talk THAAD"
    assert first.link == "https://kh.example/view.php?ud=1&utm_source=rss"
    assert "<b>summary</b>" in first.summary
    assert "full</em> story" in first.content
    assert first.author == "Yonhap"
    assert first.categories == ("North Korea", "Diplomacy")
    assert first.published == datetime(2016, 6, 16, 0, 12, tzinfo=UTC)
    assert first.updated is None
    assert second.link == "https://kh.example/view.php?ud=2"  # resolved against url
    assert second.guid is None
    assert second.published is None


def test_atom() -> None:
    feed = parse_feed(ATOM, url="https://atom.example/feed.atom")
    assert feed.title == "Atom News"
    first, second = feed.entries
    assert first.guid == "urn:uuid:entry-1"
    assert first.link == "https://atom.example/2024/03/10/story"
    assert first.title == "Russia &amp; <i>North Korea</i>"  # still HTML: normalize strips it
    assert first.author == "Jane Reporter"
    assert first.categories == ("world",)
    assert "Body in <b>XHTML</b>" in first.content
    # Published and updated are kept apart, both converted to UTC.
    assert first.published == datetime(2024, 3, 10, 4, 30, tzinfo=UTC)
    assert first.updated == datetime(2024, 3, 9, 23, 0, tzinfo=UTC)
    assert second.published == second.updated == datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


def test_rdf() -> None:
    feed = parse_feed(RDF, url="https://rdf.example/index.rdf")
    assert feed.title == "RDF News"
    (entry,) = feed.entries
    assert entry.title == "RDF item"
    assert entry.link == "https://rdf.example/a"
    assert entry.summary == "RDF description"
    assert entry.categories == ("politics",)
    assert entry.published == datetime(2016, 6, 16, 0, 12, tzinfo=UTC)


def test_longest_content_block_wins() -> None:
    body = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><id>1</id><title>t</title>
      <content type="text">short</content>
    </entry></feed>"""
    (entry,) = parse_feed(body, url="https://x.example/").entries
    assert entry.content == "short"
    rss = b"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
    <channel><title>t</title><item><title>t</title>
      <content:encoded>a much longer body of text</content:encoded>
      <content:encoded>tiny</content:encoded>
    </item></channel></rss>"""
    (entry,) = parse_feed(rss, url="https://x.example/").entries
    assert entry.content == "a much longer body of text"


def test_malformed_xml_keeps_entries_with_a_warning() -> None:
    feed = parse_feed(MALFORMED, url="https://b.example/rss", content_type="text/xml")
    assert [e.title for e in feed.entries] == ["First", "Fish & chips", "Third"]
    assert feed.warning is not None
    assert feed.warning.startswith("malformed feed: not well-formed (invalid token)")
    assert feed.warning.endswith("(line 4)")


def test_truncated_document_keeps_complete_entries() -> None:
    truncated = RSS[: RSS.index(b"<title>Relative link") + 10]
    feed = parse_feed(truncated, url=FEED_URL)
    assert feed.entries[0].title == "Seoul & Moscow talk THAAD"
    assert feed.warning is not None
    assert "line" in feed.warning


def test_valid_feed_without_entries_is_not_an_error() -> None:
    feed = parse_feed(b'<rss version="2.0"><channel><title>Quiet</title></channel></rss>', url="x")
    assert feed.entries == ()
    assert feed.title == "Quiet"
    assert feed.warning is None


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", None])
def test_html_page_is_not_a_feed(content_type: str | None) -> None:
    with pytest.raises(FeedParseError, match="HTML page") as info:
        parse_feed(HTML_PAGE, url="https://kh.example/", content_type=content_type)
    assert info.value.message == str(info.value)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty document"),
        (b"   \n ", "empty document"),
        (b'{"items": []}', 'not a feed: a JSON document without a JSON Feed "version"'),
        (b"[1, 2]", "not a feed: a JSON list, not a JSON Feed object"),
        (b"\x00\x01\x02 binary", "not a feed"),
        (b"<rss version='2.0'><channel><title>x</title><item><title>", "not a feed|malformed"),
    ],
)
def test_nothing_usable_raises(body: bytes, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse_feed(body, url="https://x.example/feed")


def test_broken_feed_without_any_entry_raises() -> None:
    body = b"<rss version='2.0'><channel><title>x</title><foo></bar></channel></rss>"
    with pytest.raises(FeedParseError, match=r"malformed feed, no entries could be read: .*line"):
        parse_feed(body, url="https://x.example/feed")


def test_encoding_from_content_type() -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>연합</title>'
        "<item><title>러시아와 북한</title></item></channel></rss>"
    ).encode("euc-kr")
    feed = parse_feed(body, url="https://x.example/", content_type="text/xml; charset=euc-kr")
    assert feed.title == "연합"
    assert feed.entries[0].title == "러시아와 북한"
    assert feed.warning is None


def test_body_is_never_opened_as_a_path(tmp_path: pytest.TempPathFactory) -> None:
    secret = tmp_path / "secret.xml"  # type: ignore[operator]
    secret.write_bytes(RSS)
    with pytest.raises(FeedParseError):
        parse_feed(str(secret).encode(), url="https://x.example/")


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_body_is_never_fetched_as_a_url(server: FeedServer) -> None:
    server.route("/feed.xml", body=RSS)
    with pytest.raises(FeedParseError):
        parse_feed(server.url("/feed.xml").encode(), url="https://x.example/")
    assert server.hits("/feed.xml") == 0


async def test_parse_feed_async() -> None:
    feed = await parse_feed_async(RDF, url="https://rdf.example/index.rdf")
    assert feed.entries[0].title == "RDF item"

"""Parsing real feed documents: RSS 2.0, Atom, RDF, broken XML, not-feeds."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from feedserver import FeedServer
from newswatch.feeds import parse as parse_module
from newswatch.feeds.parse import (
    FeedParseError,
    body_digest,
    declared_interval,
    parse_feed,
    parse_feed_async,
)
from newswatch.model import ParsedEntry, ParsedFeed

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


# --------------------------------------------------------------------------- poison entries

POISON = (Path(__file__).parent / "data" / "feeds" / "poison-charrefs.xml").read_bytes()


def test_poison_entry_is_repaired_and_the_feed_kept() -> None:
    feed = parse_feed(POISON, url="https://poison.example/rss")
    assert len(feed.entries) == 6
    assert feed.warning is None  # repaired before parsing: the XML is well-formed
    poison = next(e for e in feed.entries if e.guid == "https://poison.example/news/poison")
    assert poison.title == "Fans react 😀 to the final 😀"
    assert poison.summary == "A lone half \ufffd and a number beyond Unicode \ufffd and \ufffd."


def test_unrepaired_poison_costs_only_its_entry(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Without the repair feedparser raises on the poison item; the document
    # is then read item by item and only that item is lost.
    monkeypatch.setattr(parse_module, "repair_charrefs", lambda body, content_type=None: body)
    with caplog.at_level(logging.WARNING, logger="newswatch.feeds.parse"):
        feed = parse_feed(POISON, url="https://user:secret@poison.example/rss?token=t0k")
    assert [e.title for e in feed.entries] == [f"Good story {i}" for i in range(1, 6)]
    assert feed.skipped_entries == 1
    assert feed.warning == "1 entry could not be read"
    assert feed.title == "Poison Test Feed"
    assert "https://poison.example/rss: entry 4 skipped, the parser failed" in caplog.text
    assert "secret" not in caplog.text and "t0k" not in caplog.text


def test_unrepaired_poison_without_items_is_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_module, "repair_charrefs", lambda body, content_type=None: body)
    body = b"<rss version='2.0'><channel><title>&#xD83D;</title></channel></rss>"
    with pytest.raises(FeedParseError, match="the parser failed on this document: "):
        parse_feed(body, url="https://x.example/")


def test_an_entry_that_fails_to_convert_is_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = parse_module._entry

    def fragile(raw: Any) -> ParsedEntry:
        if dict.get(raw, "id", "").endswith("/poison"):
            raise ValueError("cannot convert")
        return real(raw)

    monkeypatch.setattr(parse_module, "_entry", fragile)
    with caplog.at_level(logging.WARNING, logger="newswatch.feeds.parse"):
        feed = parse_feed(POISON, url="https://poison.example/rss", label="Poison desk")
    assert len(feed.entries) == 5
    assert feed.skipped_entries == 1
    assert feed.warning == "1 entry could not be read"
    assert (
        "Poison desk: entry 4 (https://poison.example/news/poison) skipped: "
        "ValueError: cannot convert" in caplog.text
    )


def test_a_malformed_feed_with_skips_says_both() -> None:
    feed = parse_feed(MALFORMED, url="https://b.example/rss")
    assert feed.skipped_entries == 0
    assert feed.warning is not None and "entries could not be read" not in feed.warning


def test_lone_surrogates_never_reach_an_entry() -> None:
    feed = parse_feed(
        "<rss version='2.0'><channel><item><title>a\udc80b</title></item></channel></rss>".encode(
            "utf-8", "surrogatepass"
        ),
        url="https://x.example/",
    )
    for entry in feed.entries:
        entry.title.encode("utf-8")  # would raise on a lone surrogate


# --------------------------------------------------------------------------- polling hints


def test_ttl_and_syndication_hints() -> None:
    body = b"""<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
    <channel><title>t</title><ttl> 90 </ttl>
    <sy:updatePeriod>Daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>
    <item><title>i</title></item></channel></rss>"""
    feed = parse_feed(body, url="https://x.example/")
    assert (feed.ttl, feed.update_period, feed.update_frequency) == (90, "daily", 4)
    assert declared_interval(feed) == timedelta(hours=6)  # 4 a day, longer than the ttl


@pytest.mark.parametrize(
    ("ttl", "period", "frequency", "interval"),
    [
        (None, None, None, None),
        (30, None, None, timedelta(minutes=30)),
        (None, "hourly", None, timedelta(hours=1)),
        (None, "hourly", 4, timedelta(minutes=15)),
        (None, "weekly", 7, timedelta(days=1)),
        (10, "daily", 2, timedelta(hours=12)),  # the longer one wins
        (1440, "hourly", 2, timedelta(days=1)),
    ],
)
def test_declared_interval(
    ttl: int | None, period: str | None, frequency: int | None, interval: timedelta | None
) -> None:
    feed = ParsedFeed(
        title="t",
        link=None,
        entries=(),
        ttl=ttl,
        update_period=period,
        update_frequency=frequency,
    )
    assert declared_interval(feed) == interval


@pytest.mark.parametrize(
    ("ttl", "period", "frequency"),
    [
        ("0", "fortnightly", "0"),
        ("-5", "", "-1"),
        ("abc", "HOURLY!", "x"),
        ("99999999999999999999", "daily ", "1e3"),
    ],
)
def test_bad_hints_are_ignored(ttl: str, period: str, frequency: str) -> None:
    body = f"""<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">
    <channel><title>t</title><ttl>{ttl}</ttl><sy:updatePeriod>{period}</sy:updatePeriod>
    <sy:updateFrequency>{frequency}</sy:updateFrequency></channel></rss>""".encode()
    feed = parse_feed(body, url="https://x.example/")
    assert feed.ttl is None
    assert feed.update_frequency is None
    assert feed.update_period == ("daily" if period == "daily " else None)


def test_body_digest() -> None:
    assert body_digest(RSS) == body_digest(bytes(RSS))
    assert body_digest(RSS) != body_digest(RSS + b" ")
    assert body_digest(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

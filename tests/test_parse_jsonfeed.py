"""JSON Feed 1.0/1.1 documents parse to the same entries RSS and Atom give."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from feedserver import FeedServer
from newswatch.cli import main
from newswatch.feeds.normalize import normalize_feed
from newswatch.feeds.parse import FeedParseError, parse_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
JSON_FEED = (FEEDS / "jsonfeed-1.1.json").read_bytes()
URL = "https://signal.example/feed.json"


def doc(*items: Any, version: str = "https://jsonfeed.org/version/1.1", **top: Any) -> bytes:
    return json.dumps({"version": version, "title": "T", "items": list(items), **top}).encode()


def test_json_feed_file(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        feed = parse_feed(JSON_FEED, url=URL, content_type="application/feed+json")
    assert feed.title == "Signal & Noise"
    assert feed.link == "https://signal.example/"
    # The string item is skipped, counted and logged with the feed's name.
    assert feed.skipped_entries == 1
    assert feed.warning == "1 entry could not be read"
    assert "https://signal.example/feed.json: JSON Feed item 4 skipped" in caplog.text
    first, second, third, fourth = feed.entries
    assert first.guid == "https://signal.example/2025/03/10/sanctions"
    assert first.link == "https://signal.example/2025/03/10/sanctions?utm_source=jsonfeed"
    assert first.title == "New sanctions name &lt;five&gt; shipping firms &amp; a bank"
    assert "<b>Russia</b>" in first.content
    assert first.summary == "Five shipping firms and a bank were named."
    assert first.author == "Kim Ji-woo, Sam Ortiz"
    assert first.categories == ("sanctions", "shipping")
    assert first.published == datetime(2025, 3, 10, 0, 30, tzinfo=UTC)
    assert first.updated == datetime(2025, 3, 10, 2, 0, tzinfo=UTC)
    assert second.guid == "2"
    assert second.link == "https://elsewhere.example/report.pdf"  # external_url
    assert third.guid == "3"  # a number, kept as text
    assert third.published == datetime(2025, 3, 8, 7, 0, tzinfo=UTC)  # RFC 822 tolerated
    assert "\ufffd here" in third.content  # a lone surrogate escape is replaced
    assert fourth.author == "Old Style"  # 1.0's single author
    assert fourth.published is None


def test_plain_text_fields_survive_normalization() -> None:
    articles = normalize_feed(
        parse_feed(JSON_FEED, url=URL), feed_key="k", source="s", base_url=URL
    )
    by_key = {a.entry_key: a for a in articles}
    assert by_key["https://signal.example/2025/03/10/sanctions"].title == (
        "New sanctions name <five> shipping firms & a bank"
    )
    assert by_key["https://signal.example/2025/03/10/sanctions"].content == (
        "The Treasury named five firms that moved oil between Russia and North Korea."
    )
    assert by_key["2"].content == (
        "Plain text body: 2 < 3 and <title> stays literal.\nSecond line."
    )
    assert by_key["3"].link == "https://signal.example/2025/03/08/relative"


@pytest.mark.parametrize(
    "content_type", [None, "application/feed+json", "application/json; charset=utf-8", "text/html"]
)
def test_json_is_recognised_by_content_or_type(content_type: str | None) -> None:
    feed = parse_feed(doc({"id": "1", "title": "x"}), url=URL, content_type=content_type)
    assert [e.guid for e in feed.entries] == ["1"]


def test_version_1_0_and_a_bom() -> None:
    body = b"\xef\xbb\xbf\n " + doc({"id": "a"}, version="http://jsonfeed.org/version/1")
    assert parse_feed(body, url=URL).entries[0].guid == "a"


def test_xml_served_as_json_is_read_as_xml() -> None:
    rss = (
        b"<rss version='2.0'><channel><title>X</title><item><title>i</title></item></channel></rss>"
    )
    feed = parse_feed(rss, url=URL, content_type="application/json")
    assert feed.entries[0].title == "i"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": [}', None, r"not valid JSON: "),
        (b'{\n  "version": 1,\n  "items": [\n  ,]}', None, r"\(line 4, column 3\)"),
        (b"not json at all", "application/feed+json", r"not a feed: not valid JSON"),
        (b'{"items": []}', None, r'without a JSON Feed "version"'),
        (b'{"version": "https://example.com/v1", "items": []}', None, r'JSON Feed "version"'),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', None, r'without an "items" list'),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', None, r'"items" list'),
        (b"[" * 100_000, None, r"not valid JSON"),  # RecursionError, not a traceback
        (b'"just a string"', "application/json", r"a JSON str, not a JSON Feed object"),
    ],
)
def test_bad_json_feeds(body: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(FeedParseError, match=message):
        parse_feed(body, url=URL, content_type=content_type)


@pytest.mark.parametrize(
    ("item", "field", "value"),
    [
        (
            {"id": "1", "date_published": "2025-03-10T09:30:00Z"},
            "published",
            datetime(2025, 3, 10, 9, 30, tzinfo=UTC),
        ),
        (
            {"id": "1", "date_published": "2025-03-10T09:30:00"},
            "published",
            datetime(2025, 3, 10, 9, 30, tzinfo=UTC),
        ),
        ({"id": "1", "date_published": "yesterday"}, "published", None),
        (
            {"id": "1", "date_modified": "2025-03-10T09:30:00+09:00"},
            "published",
            datetime(2025, 3, 10, 0, 30, tzinfo=UTC),
        ),
        ({"id": True, "url": "u"}, "guid", None),
        ({"id": 1.5, "url": "u"}, "guid", "1.5"),
        ({"id": "1", "title": ["not", "text"]}, "title", ""),
        ({"id": "1", "content_html": "<p>h</p>", "content_text": "t"}, "content", "<p>h</p>"),
        ({"id": "1", "content_text": "a & b"}, "content", "a &amp; b"),
        ({"id": "1", "tags": ["a", 3, "", "b"]}, "categories", ("a", "b")),
        ({"id": "1", "authors": [{"name": "A"}, "x", {"url": "u"}]}, "author", "A"),
        ({"id": "1", "authors": "nobody"}, "author", ""),
    ],
)
def test_item_fields(item: dict[str, Any], field: str, value: Any) -> None:
    (entry,) = parse_feed(doc(item), url=URL).entries
    assert getattr(entry, field) == value


def test_items_with_nothing_in_them_are_dropped() -> None:
    feed = parse_feed(doc({}, {"id": "kept"}, {"title": ""}), url=URL)
    assert [e.guid for e in feed.entries] == ["kept"]
    assert feed.warning is None


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_newswatch_test_url_on_a_json_feed(server: FeedServer, tmp_path: Path) -> None:
    server.route("/feed.json", body=JSON_FEED, content_type="application/feed+json")
    result = CliRunner().invoke(
        main,
        [
            "test",
            "--config",
            str(tmp_path / "none.yaml"),
            "--query",
            '"North Korea"',
            "--url",
            server.url("/feed.json"),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "MATCH" in result.stdout
    assert "New sanctions name <five> shipping firms & a bank" in result.stdout
    assert '"version"' not in result.stdout  # not the whole document as a title

"""Feed autodiscovery from a page's <link rel="alternate"> tags: a table."""

from __future__ import annotations

import pytest

from newswatch.feeds.discover import MAX_FEEDS, discover_feeds

BASE = "https://news.example.com/world/index.html"


def page(head: str, body: str = "<p>hello</p>") -> str:
    return f"<!doctype html><html><head><title>t</title>{head}</head><body>{body}</body></html>"


@pytest.mark.parametrize(
    ("html", "found"),
    [
        pytest.param(
            page('<link rel="alternate" type="application/rss+xml" href="/rss.xml">'),
            ["https://news.example.com/rss.xml"],
            id="rss, root-relative",
        ),
        pytest.param(
            page(
                '<link rel="alternate" type="application/atom+xml" href="atom.xml">'
                '<link rel="alternate" type="application/feed+json" href="feed.json">'
                '<link rel="alternate" type="application/json" href="https://cdn.example/f.json">'
            ),
            [
                "https://news.example.com/world/atom.xml",
                "https://news.example.com/world/feed.json",
                "https://cdn.example/f.json",
            ],
            id="atom, JSON Feed, json; document order",
        ),
        pytest.param(
            page(
                "<LINK REL=Alternate TYPE='Application/RSS+XML; charset=utf-8' HREF=/a.xml>"
                '<link rel="feed alternate" type="application/rss+xml" href="/b.xml" />'
            ),
            ["https://news.example.com/a.xml", "https://news.example.com/b.xml"],
            id="case, parameters, several rel tokens, self-closing",
        ),
        pytest.param(
            page(
                '<link rel="alternate" type="application/rss+xml" href="/rss.xml">'
                '<link rel="alternate" type="application/rss+xml" href="https://news.example.com/rss.xml#x">'
                '<link rel="alternate" type="application/rss+xml" href=" /rss.xml ">'
            ),
            ["https://news.example.com/rss.xml"],
            id="deduplicated after resolving (fragment and spaces dropped)",
        ),
        pytest.param(
            page(
                '<link rel="stylesheet" type="application/rss+xml" href="/no1.xml">'
                '<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">'
                '<link rel="alternate" href="/no-type.xml">'
                '<link rel="alternate" type="application/rss+xml">'
                '<link rel="alternate" type="application/rss+xml" href="">'
                '<a rel="alternate" type="application/rss+xml" href="/anchor.xml">x</a>'
            ),
            [],
            id="not feed links",
        ),
        pytest.param(
            page(
                '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
                '<link rel="alternate" type="application/rss+xml" href="data:text/xml,<rss/>">'
                '<link rel="alternate" type="application/rss+xml" href="file:///etc/passwd">'
                '<link rel="alternate" type="application/rss+xml" href="ftp://x.example/f">'
                '<link rel="alternate" type="application/rss+xml" href="http://[::1/f">'
                '<link rel="alternate" type="application/rss+xml" href="feed://x.example/f">'
            ),
            [],
            id="only http(s), malformed dropped",
        ),
        pytest.param(
            page(
                '<link rel="alternate" type="application/json" '
                'href="https://news.example.com/wp-json/wp/v2/pages/2">'
                '<link rel="alternate" type="application/json+oembed" href="/oembed?u=1">'
                '<link rel="alternate" type="application/rss+xml" href="/feed/">'
            ),
            ["https://news.example.com/feed/"],
            id="WordPress REST and oEmbed links are not feeds",
        ),
        pytest.param(
            page(
                '<base href="https://static.example.org/site/">'
                '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
            ),
            ["https://static.example.org/site/rss.xml"],
            id="base href",
        ),
        pytest.param(
            page(
                '<base href="/mirror/"><base href="https://ignored.example/">'
                '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
            ),
            ["https://news.example.com/mirror/rss.xml"],
            id="relative base, first one wins",
        ),
        pytest.param(
            page(
                '<link rel="alternate" type="application/rss+xml" '
                'href="https://u:pw@news.example.com/rss?a=1&amp;b=2">'
            ),
            ["https://news.example.com/rss?a=1&b=2"],
            id="entities decoded, credentials dropped",
        ),
        pytest.param(
            page("", body='<link rel="alternate" type="application/atom+xml" href="/late.xml">'),
            ["https://news.example.com/late.xml"],
            id="a link in the body still counts",
        ),
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" href="/r\n\t.xml"',
            [],
            id="unterminated tag at the end",
        ),
        pytest.param(
            '<html><head><link rel="alternate" type="application/rss+xml" href="/a.xml">'
            "<<<>>><!-- <link rel='alternate' type='application/rss+xml' href='/c.xml'> "
            "<![CDATA[ x <link rel=alternate type=application/rss+xml href=/b.xml>",
            ["https://news.example.com/a.xml"],
            id="garbage, comments, an unclosed comment",
        ),
        pytest.param(
            '<link rel="alternate" type="application/rss+xml" href="/r\n\t.xml">',
            ["https://news.example.com/r.xml"],
            id="tabs and newlines inside a URL are dropped, as browsers do",
        ),
        pytest.param("", [], id="empty"),
        pytest.param("\x00\xff\ufffd" * 100, [], id="binary junk"),
    ],
)
def test_discover_feeds(html: str, found: list[str]) -> None:
    assert discover_feeds(html, BASE) == found


def test_bytes_are_decoded_leniently() -> None:
    html = (
        b'<head><meta charset="latin-1"><title>\xe9t\xe9</title>'
        b'<link rel="alternate" type="application/rss+xml" href="/%C3%A9.xml"></head>'
    )
    assert discover_feeds(html, BASE) == ["https://news.example.com/%C3%A9.xml"]


def test_the_number_of_feeds_is_bounded() -> None:
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="/f{i}.xml">'
        for i in range(MAX_FEEDS * 10)
    )
    found = discover_feeds(page(links), BASE)
    assert len(found) == MAX_FEEDS
    assert found[0] == "https://news.example.com/f0.xml"

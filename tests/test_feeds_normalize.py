"""Normalization: HTML -> text, canonical URLs, entry and story keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from newswatch.feeds.normalize import (
    MAX_CATEGORIES,
    MAX_FIELD_CHARS,
    MAX_KEY_CHARS,
    MAX_LINE_CHARS,
    canonical_url,
    entry_key,
    html_to_text,
    normalize_entry,
    normalize_feed,
    story_key,
)
from newswatch.model import ParsedEntry, ParsedFeed

KST = timezone(timedelta(hours=9))


def make_entry(**fields: object) -> ParsedEntry:
    values: dict[str, object] = {
        "guid": None,
        "link": None,
        "title": "",
        "summary": "",
        "content": "",
        "author": "",
        "categories": (),
        "published": None,
        "updated": None,
    }
    values.update(fields)
    return ParsedEntry(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- html_to_text


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("plain text, no markup", "plain text, no markup"),
        ("  lots   of \t\n  space  ", "lots of\nspace"),
        ("<p>One</p><p>Two</p>", "One\nTwo"),
        ("line<br>break<br/>again", "line\nbreak\nagain"),
        ("<b>bold</b> and <i>italic</i>", "bold and italic"),
        (
            "Seoul &amp; Moscow &ndash; &#8220;talks&#8221; &#x2014; ok",
            "Seoul & Moscow – “talks” — ok",
        ),
        ("a&nbsp;b\u00a0c", "a b c"),
        ("<script>alert('x')</script>kept<style>p{}</style>", "kept"),
        ("<html><head><title>T</title></head><body>body</body></html>", "body"),
        ("<HTML><HEAD><TITLE>T</TITLE></HEAD><BODY>upper</BODY></HTML>", "upper"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("AT&T: 5 > 3 and 2 < 4", "AT&T: 5 > 3 and 2 < 4"),
        ("x<y", "x<y"),
        ("unclosed <div", "unclosed <div"),
        ("<p>unterminated <b>tags", "unterminated tags"),
        ("<<<>>>&&&;;", "<<<>>>&&&;;"),
        ("a <!-- hidden --> b", "a b"),
        ("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth"),
        ("ctrl\x00\x07chars", "ctrl chars"),
        ("<p>러시아는 <em>북한</em>과</p>", "러시아는 북한과"),
        # A skipped element that never closes gives its text back.
        ("<script>never closed", "never closed"),
        (
            "<p>Before.</p><script async src='x.js'><p>After, the article.</p>",
            "Before.\nAfter, the article.",
        ),
        ("a<style>p { color: red }<p>b</p>", "ap { color: red }\nb"),
        ("<svg><text>icon</text> text after", "icon text after"),
        ("<svg><svg></svg>nested, never closed", "nested, never closed"),
        ("<div>a<svg>s<script>t</script>u</svg>b</div>", "ab"),
        ("x<script>1</script>y<style>2</style>z<svg>3</svg>w", "xyzw"),
        # Fragments (feed content) keep head, title, template, noscript text:
        # posts about HTML write them unescaped.
        (
            "<p>Put a link to respond.js in the <head>, and a <title> that says what"
            " the page is about.</p><p>More text.</p>",
            "Put a link to respond.js in the , and a that says what the page is about.\nMore text.",
        ),
        ("<pre><template>\n<div>Hello</div>\n</template></pre><p>Rest</p>", "Hello\nRest"),
        ("<noscript>Enable JavaScript</noscript> ok", "Enable JavaScript ok"),
        ("<title>T</title>body", "Tbody"),
        # A whole page: its head (and title) is not text.
        ("<!DOCTYPE html><html><head><title>T</title><style>x</style></head><p>Body</p>", "Body"),
        ("<!-- c --><html><head><title>T</title><p>Body without </head>", "Body without"),
        ("<html><head><title>Unclosed head", "Unclosed head"),
        ("<html><body><noscript>JS off</noscript><template>t</template>Main</body></html>", "Main"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_caps_length() -> None:
    text = html_to_text("<p>" + "word " * (MAX_FIELD_CHARS // 2) + "</p>")
    assert len(text) <= MAX_FIELD_CHARS
    assert text.startswith("word word")


def test_html_to_text_survives_garbage() -> None:
    garbage = "".join(chr(i) for i in range(0, 0x3000, 7)) + "<" * 1000 + "&#xFFFFFFFF;</</>"
    assert isinstance(html_to_text(garbage), str)


# --------------------------------------------------------------------------- canonical_url


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM/News/1", "http://example.com/News/1"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/#!/story/1", "https://example.com/#!/story/1"),
        ("https://example.com/a?", "https://example.com/a"),
        (
            "https://example.com/a?utm_source=x&utm_medium=rss&UTM_Campaign=y&id=7",
            "https://example.com/a?id=7",
        ),
        (
            "https://example.com/a?fbclid=1&gclid=2&mc_cid=3&mc_eid=4&igshid=5&ref=6"
            "&cmpid=7&ocid=8&_ga=9&yclid=10&spm=11",
            "https://example.com/a",
        ),
        ("https://example.com/a?b=2&a=1&c=3", "https://example.com/a?a=1&b=2&c=3"),
        ("https://example.com/a?q=x%2fy+z", "https://example.com/a?q=x%2Fy+z"),
        ("https://example.com/%7euser/", "https://example.com/%7Euser/"),
        ("https://example.com./a", "https://example.com/a"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("/relative/path?utm_source=x", "/relative/path?utm_source=x"),
        ("", ""),
        ("not a url", "not a url"),
        ("http://[broken/", "http://[broken/"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_canonical_url_is_idempotent() -> None:
    url = "HTTPS://WWW.Example.com:443/a/b?z=1&utm_term=x&a=%2f#frag"
    once = canonical_url(url)
    assert canonical_url(once) == once == "https://www.example.com/a/b?a=%2F&z=1"


# --------------------------------------------------------------------------- keys


def test_entry_key_prefers_guid() -> None:
    entry = make_entry(guid=" urn:kh:123 ", link="https://example.com/a", title="T")
    assert entry_key(entry) == "urn:kh:123"


def test_entry_key_falls_back_to_canonical_link() -> None:
    entry = make_entry(link="HTTPS://Example.com/a?utm_source=rss", title="T")
    assert entry_key(entry) == "https://example.com/a"


def test_entry_key_falls_back_to_hash_of_title_and_date() -> None:
    when = datetime(2016, 6, 16, 0, 12, tzinfo=UTC)
    a = make_entry(title="THAAD", published=when)
    same_instant = make_entry(title="THAAD", published=when.astimezone(KST))
    later = make_entry(title="THAAD", published=when + timedelta(hours=1))
    other = make_entry(title="Other", published=when)
    assert entry_key(a).startswith("sha256:")
    assert entry_key(a) == entry_key(same_instant)
    assert len({entry_key(a), entry_key(later), entry_key(other)}) == 3
    # The summary is not part of the key: an edit must not make the entry "new".
    assert entry_key(a) == entry_key(make_entry(title="THAAD", published=when, summary="x"))


def test_entry_key_hashes_huge_guids() -> None:
    key = entry_key(make_entry(guid="g" * (MAX_KEY_CHARS + 1)))
    assert key.startswith("sha256:")
    assert len(key) <= MAX_KEY_CHARS


def test_story_key_follows_the_canonical_url_across_feeds() -> None:
    a = story_key(canonical_url="https://example.com/a", feed_key="feed1", entry_key="g1")
    b = story_key(canonical_url="https://example.com/a", feed_key="feed2", entry_key="g2")
    c = story_key(canonical_url="https://example.com/b", feed_key="feed1", entry_key="g1")
    assert a == b != c


def test_story_key_without_absolute_link_is_per_feed_entry() -> None:
    a = story_key(canonical_url="", feed_key="feed1", entry_key="g1")
    b = story_key(canonical_url="", feed_key="feed2", entry_key="g1")
    # A relative link names nothing across sites, so it must not merge stories.
    c = story_key(canonical_url="/news/1", feed_key="feed1", entry_key="x")
    d = story_key(canonical_url="/news/1", feed_key="feed2", entry_key="x")
    assert len({a, b, c, d}) == 4


# --------------------------------------------------------------------------- articles


def test_normalize_entry() -> None:
    entry = make_entry(
        guid="kh-1",
        link="/view.php?ud=20160616000123&utm_source=rss",
        title="THAAD &amp; <b>Russia</b>",
        summary="<p>Short &quot;summary&quot;</p>",
        content="<div><p>Long</p><p>content</p></div>",
        author=" <i>Yonhap</i> ",
        categories=("North Korea", " North Korea ", "", "<b>Diplomacy</b>"),
        published=datetime(2016, 6, 16, 9, 12, tzinfo=KST),
    )
    article = normalize_entry(
        entry,
        feed_key="https://kh.example/rss",
        source="Korea Herald",
        tags=("korea",),
        base_url="https://kh.example/rss/national.xml",
    )
    assert article.title == "THAAD & Russia"
    assert article.summary == 'Short "summary"'
    assert article.content == "Long\ncontent"
    assert article.author == "Yonhap"
    assert article.categories == ("North Korea", "Diplomacy")
    assert article.link == "https://kh.example/view.php?ud=20160616000123&utm_source=rss"
    assert article.canonical_url == "https://kh.example/view.php?ud=20160616000123"
    assert article.published == datetime(2016, 6, 16, 0, 12, tzinfo=UTC)
    assert article.published is not None
    assert article.published.utcoffset() == timedelta(0)
    assert article.entry_key == "kh-1"
    assert article.story_key == story_key(
        canonical_url=article.canonical_url, feed_key=article.feed_key, entry_key="kh-1"
    )
    assert (article.feed_key, article.source, article.tags) == (
        "https://kh.example/rss",
        "Korea Herald",
        ("korea",),
    )


@pytest.mark.parametrize(
    "link", ["javascript:alert(1)", "data:text/html,<script>x</script>", "file:///etc/passwd"]
)
def test_normalize_entry_drops_unsafe_links(link: str) -> None:
    article = normalize_entry(make_entry(title="t", link=link), feed_key="f", source="s")
    assert article.link == article.canonical_url == ""


def test_normalize_entry_times() -> None:
    naive = normalize_entry(
        make_entry(title="t", published=datetime(2024, 1, 1, 12)), feed_key="f", source="s"
    )
    assert naive.published == datetime(2024, 1, 1, 12, tzinfo=UTC)
    updated_only = normalize_entry(
        make_entry(title="t", updated=datetime(2024, 1, 1, 12, tzinfo=KST)),
        feed_key="f",
        source="s",
    )
    assert updated_only.published == datetime(2024, 1, 1, 3, tzinfo=UTC)
    undated = normalize_entry(make_entry(title="t"), feed_key="f", source="s")
    assert undated.published is None


def test_normalize_entry_caps_fields() -> None:
    entry = make_entry(
        title="T" * (MAX_LINE_CHARS * 2),
        content="x" * (MAX_FIELD_CHARS * 2),
        categories=tuple(f"c{i}" for i in range(MAX_CATEGORIES * 2)),
    )
    article = normalize_entry(entry, feed_key="f", source="s")
    assert len(article.title) == MAX_LINE_CHARS
    assert len(article.content) == MAX_FIELD_CHARS
    assert len(article.categories) == MAX_CATEGORIES


def test_normalize_feed_drops_duplicates_and_empty_entries() -> None:
    parsed = ParsedFeed(
        title="Feed",
        link=None,
        entries=(
            make_entry(guid="1", title="first"),
            make_entry(guid="2", title="second"),
            make_entry(guid="1", title="first again"),
            make_entry(link="https://e.example/x?utm_source=a", title="by link"),
            make_entry(link="https://e.example/x?utm_source=b", title="same link"),
            make_entry(),  # what a truncated document leaves at its end
        ),
    )
    articles = normalize_feed(parsed, feed_key="f", source="s", tags=("t",))
    assert [a.title for a in articles] == ["first", "second", "by link"]
    assert [a.entry_key for a in articles] == ["1", "2", "https://e.example/x"]
    assert all(a.tags == ("t",) for a in articles)

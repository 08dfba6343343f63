"""The saved feeds in tests/data/feeds, end to end through parse and normalize.

newswatch runs feedparser without its HTML sanitizer and relative-URI
rewriter (3x less CPU on real feeds, docs/decisions.md). This pins that the
articles come out as they did with both on: same entries, keys, titles,
links, dates, and the same text, except where the difference is the point
(listed in ``IMPROVED``). benchmarks/parse.py measures the same on a corpus
of 200 real feeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newswatch.feeds.normalize import normalize_feed
from newswatch.feeds.parse import parse_feed, parse_xml
from newswatch.model import Article

FEEDS = Path(__file__).parent / "data" / "feeds"
XML_FEEDS = sorted(p.name for p in FEEDS.iterdir() if p.suffix in (".xml", ".rdf"))
BASE = "https://corpus.example/feeds/"
SANITIZED = {"sanitize_html": True, "resolve_relative_uris": True}

# (file, entry key): entries whose text is meant to differ from the sanitizer's.
IMPROVED = {
    # An unclosed <script> no longer swallows the rest of the article
    # (the sanitizer dropped it, html_to_text now gives the text back).
    ("html-about-html.xml", "https://markup.example/posts/broken-embed/"),
}


def articles(name: str, options: dict[str, bool] | None = None) -> list[Article]:
    body = (FEEDS / name).read_bytes()
    url = BASE + name
    parsed = (
        parse_xml(body, url=url) if options is None else parse_xml(body, url=url, options=options)
    )
    return normalize_feed(parsed, feed_key="k", source="s", base_url=url)


def identity(a: Article) -> tuple[object, ...]:
    return (a.entry_key, a.story_key, a.title, a.link, a.canonical_url, a.published)


def text(a: Article) -> tuple[object, ...]:
    return (a.summary, a.content, a.author, a.categories)


def test_the_corpus_covers_what_it_should() -> None:
    assert len(XML_FEEDS) >= 9
    assert (FEEDS / "jsonfeed-1.1.json").exists()


@pytest.mark.parametrize("name", XML_FEEDS)
def test_adopted_options_give_the_same_articles(name: str) -> None:
    fast, sanitized = articles(name), articles(name, SANITIZED)
    assert fast, f"{name} gave no articles"
    assert [identity(a) for a in fast] == [identity(a) for a in sanitized]
    for new, old in zip(fast, sanitized, strict=True):
        if (name, new.entry_key) in IMPROVED:
            assert text(new) != text(old)
        else:
            assert text(new) == text(old), f"{name}: {new.entry_key}"


def test_parse_feed_is_the_adopted_path() -> None:
    for name in XML_FEEDS:
        body = (FEEDS / name).read_bytes()
        assert parse_feed(body, url=BASE + name) == parse_xml(body, url=BASE + name)


def by_key(name: str) -> dict[str, Article]:
    return {a.entry_key: a for a in articles(name)}


def test_rss_cdata_entities_and_relative_links() -> None:
    got = by_key("rss2-cdata-entities.xml")
    first = got["https://gazette.example/?p=48213"]
    assert first.title == "Seoul & Moscow trade warnings over “grain corridor” talks"
    assert first.author == "Min-jun Park"
    assert first.categories == ("Asia", "Diplomacy")
    assert "Prices rose 3 % — the most since 2022 & the highest on record." in first.content
    assert "dataLayer" not in first.content  # the script is dropped
    assert "Port Tonnes\nBusan 1,200" in first.content
    assert "🌏 and 🌎" in first.content
    relative = got["https://corpus.example/world/2025/03/09/markets-risk-off/"]
    assert relative.link == "https://corpus.example/world/2025/03/09/markets-risk-off/"
    assert relative.title == 'Markets: "risk-off" mood as yields climb <5%>'


def test_atom_xhtml_content_and_xml_base() -> None:
    got = by_key("atom-xhtml.xml")
    deal = got["tag:notes.example,2025-03-10:/2025/03/10/port-deal"]
    assert deal.title == "Russia & North Korea sign port deal"
    assert deal.link == "https://notes.example/2025/03/10/port-deal.html"  # xml:base
    assert deal.content == (
        "The deal covers the port of Rason, officials said.\nBerths: 3\nTerm: 49 years\n"
        "See the map & the MoU."
    )
    plain = got["urn:uuid:8f7c6b1e-9d7e-4a44-a6f1-6d1e2c3b4a59"]
    assert plain.content == "Plain text: 2 < 3 && 5 > 4."


def test_youtube_media_description_is_the_summary() -> None:
    video = by_key("youtube-media.xml")["yt:video:AbCdEfGhIjK"]
    assert video.summary.startswith("Our correspondent explains the Black Sea grain corridor")
    assert "Russia's position & what North Korea has to do with it." in video.summary


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("windows-1252.xml", "« Accord céréalier » : la Russie et la Corée du Nord en pourparlers"),
        ("euc-kr.xml", "러시아와 북한, 항만 협정 체결"),
        ("utf-16.xml", "UTF-16 with an emoji written the UTF-16 way: 🌏"),
        ("rdf-rss1.rdf", "Ocean heat content hits a new high"),
    ],
)
def test_encodings_and_rdf(name: str, title: str) -> None:
    assert articles(name)[0].title == title


def test_html_about_html_keeps_its_text() -> None:
    got = by_key("html-about-html.xml")
    head = got["https://markup.example/posts/head-first/"].content
    assert head.endswith(
        "Summary: write the head by hand, test on a real phone, and keep the page light."
    )
    vue = got["https://markup.example/posts/vue-sfc/"].summary
    assert "Hello from the template" in vue
    assert vue.endswith("explains the script block.")
    embed = got["https://markup.example/posts/broken-embed/"].summary
    assert embed.endswith("the article goes on about Russia and North Korea.")

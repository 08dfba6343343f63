"""Where feeds come from and how they are shown: Google News searches,
autodiscovery, a feed's own title, full text, OPML in and out, and the
`feeds` / `poll --once` commands. Real loopback servers, real SQLite."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedserver import FeedServer
from newswatch.cli import main
from newswatch.config import load_config
from newswatch.config.models import FeedConfig, google_news_url
from newswatch.daemon import App
from newswatch.feeds.googlenews import unwrap_google_news
from newswatch.feeds.normalize import normalize_feed
from newswatch.feeds.parse import parse_feed
from newswatch.opml import OpmlError, OpmlFeed, read_opml_feeds, write_opml
from samples import REPO, Item, rss

DATA = REPO / "tests" / "data"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def config_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "newswatch.yaml"
    path.write_text(
        f"state: sqlite:///{tmp_path}/state.db\n" + textwrap.dedent(body).lstrip(),
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------- google news


def test_google_news_feed_builds_the_search_url() -> None:
    feed = FeedConfig(google_news='"North Korea" Russia', hl="ko", gl="KR")
    assert feed.source == (
        "https://news.google.com/rss/search?q=%22North+Korea%22+Russia&hl=ko&gl=KR&ceid=KR%3Ako"
    )
    assert feed.label == 'Google News: "North Korea" Russia'
    assert google_news_url("x", ceid="US:en").endswith("ceid=US%3Aen")
    with pytest.raises(ValueError, match="exactly one of"):
        FeedConfig(google_news="x", url="https://e.org/rss")
    with pytest.raises(ValueError, match="search query"):
        FeedConfig(google_news="  ")


def test_google_news_links_unwrap_to_the_publisher() -> None:
    body = (DATA / "google_news_search.xml").read_bytes()
    parsed = parse_feed(body, url="https://news.google.com/rss/search?q=x")
    articles = normalize_feed(parsed, feed_key="f", source="Google News")
    links = [a.canonical_url for a in articles]
    assert links[0] == "https://www.koreaherald.com/view.php?ud=20240619000711"
    # Tracking parameters go as for any link: one story, one URL.
    assert (
        links[1] == "https://www.reuters.com/world/asia-pacific/putin-visits-pyongyang-2024-06-19/"
    )
    # An opaque (newer) id cannot be decoded without asking Google: kept.
    assert links[2].startswith("https://news.google.com/rss/articles/CBMi")


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://news.google.com/url?url=https://e.org/a&ct=ga", "https://e.org/a"),
        ("https://news.google.com/news/url?sa=t&url=http://e.org/b", "http://e.org/b"),
        (
            "https://news.google.com/rss/articles/!!notbase64",
            "https://news.google.com/rss/articles/!!notbase64",
        ),
        (
            "https://e.org/news.google.com/url?url=https://x.org",
            "https://e.org/news.google.com/url?url=https://x.org",
        ),
        (
            "https://evil.org/?url=https://news.google.com/",
            "https://evil.org/?url=https://news.google.com/",
        ),
        ("", ""),
    ],
)
def test_unwrap_leaves_anything_else_alone(link: str, expected: str) -> None:
    assert unwrap_google_news(link) == expected


def test_google_news_feed_is_remote_for_the_poll_floor(tmp_path: Path) -> None:
    cfg = config_file(tmp_path, "feeds: [{google_news: 'Russia', every: 10s}]\n")
    code, _, err = run_cli("check", "--config", str(cfg))
    assert code == 1 and "at most once a minute" in err


# --------------------------------------------------------------------------- discovery + titles


async def test_site_page_leads_to_its_feed_once_and_is_shown(
    tmp_path: Path, server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head>'
    server.route("/", body=page, content_type="text/html")
    server.route(
        "/feed.xml", body=rss(Item("Russia and North Korea", "http://e.org/1"), title="Site News")
    )
    cfg = config_file(tmp_path, f'feeds: [{{url: "{server.url("/")}"}}]\n')
    loaded = load_config(cfg, env={})
    caplog.set_level(logging.INFO, "newswatch.poll")
    async with App.open(loaded) as app:
        [first] = await app.poller.poll_all()
        [second] = await app.poller.poll_all()
    assert first.status == "updated" and first.new_articles == 1
    assert second.status == "updated" and second.new_articles == 0
    assert server.hits("/") == 1 and server.hits("/feed.xml") == 2  # the page once
    assert f"found its feed {server.url('/feed.xml')}" in caplog.text
    code, out, _ = run_cli("feeds", "--config", str(cfg))
    assert code == 0
    assert "Site News" in out and "feed found on the page" in out  # its own title, not the URL
    code, out, _ = run_cli("feeds", "--config", str(cfg), "--json")
    [row] = json.loads(out)["feeds"]
    assert row["note"] == f"feed found on the page: {server.url('/feed.xml')}"


def test_unnamed_feed_is_shown_by_its_title_never_its_url(
    tmp_path: Path, server: FeedServer
) -> None:
    server.route("/f.xml", body=rss(Item("x", "http://e.org/1"), title="Agency Wire"))
    url = server.url("/f.xml") + "?token=SECRET-TOKEN-1"
    cfg = config_file(tmp_path, f'feeds: [{{url: "{url}"}}]\n')
    assert run_cli("poll", "--once", "--config", str(cfg))[0] == 0
    code, out, err = run_cli("feeds", "--config", str(cfg), "--json")
    assert code == 0 and "SECRET-TOKEN-1" not in out + err
    document = json.loads(out)
    assert [f["feed"] for f in document["feeds"]] == ["Agency Wire"]


# --------------------------------------------------------------------------- full text


async def test_full_text_matches_the_article_page(tmp_path: Path, server: FeedServer) -> None:
    pytest.importorskip("trafilatura")
    words = " ".join(["The ministers met in Vladivostok for a long day of talks."] * 8)
    article = (
        "<html><head><title>Talks</title></head><body><nav>Home | World</nav><article>"
        f"<h1>Talks</h1><p>{words}</p><p>Officials said Pyongyang and Moscow signed "
        f"a treaty on mutual defence.</p><p>{words}</p></article></body></html>"
    )
    server.route("/story", body=article.encode(), content_type="text/html")
    server.route("/broken", status=500)
    teaser = Item("Talks in the east", server.url("/story"), guid="1", body="Teaser only.")
    failing = Item("Other talks", server.url("/broken"), guid="2", body="Pyongyang teaser")
    server.route("/f.xml", body=rss(teaser, failing))
    cfg = config_file(
        tmp_path,
        f"""
        feeds:
          - {{url: "{server.url("/f.xml")}", full_text: true, backfill: all, allow_private: true}}
        rules: [{{name: treaty, query: 'Pyongyang'}}]
        """,
    )
    async with App.open(load_config(cfg, env={})) as app:
        [outcome] = await app.poller.poll_all()
        stored = {a.title: a for a in app.store.iter_articles()}
    # The first matched on its page's text; the second's page failed, so
    # its own summary was used (and matched).
    assert outcome.matched == 2
    assert "mutual defence" in stored["Talks in the east"].content
    assert "Home | World" not in stored["Talks in the east"].content
    assert stored["Other talks"].content == "" and "Pyongyang" in stored["Other talks"].summary


# --------------------------------------------------------------------------- opml


OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="World News">
    <outline text="Korea Herald" xmlUrl="https://www.koreaherald.com/rss" category="asia,/korea"/>
    <outline text="Inner"><outline title="Yonhap" xmlUrl="https://en.yna.co.kr/rss"/></outline>
  </outline>
  <outline text="Top" xmlUrl="https://top.example.org/feed"/>
  <outline text="dup" xmlUrl="https://top.example.org/feed"/>
</body></opml>"""


def test_opml_folders_become_tags() -> None:
    assert read_opml_feeds(OPML) == [
        OpmlFeed(
            "https://www.koreaherald.com/rss", "Korea Herald", ("world-news", "asia", "korea")
        ),
        OpmlFeed("https://en.yna.co.kr/rss", "Yonhap", ("world-news", "inner")),
        OpmlFeed("https://top.example.org/feed", "Top", ()),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<opml><body>", "not valid XML"),
        (b"<rss/>", "not <opml>"),
        (b"<opml/>", "no <body>"),
        (b'<!DOCTYPE opml [<!ENTITY a "aaaa">]><opml><body/></opml>', "DOCTYPE"),
    ],
)
def test_bad_opml_is_refused_with_a_reason(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError, match=message):
        read_opml_feeds(data)


def test_feeds_import_prints_or_writes_yaml_for_new_feeds(tmp_path: Path) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_bytes(OPML)
    cfg = config_file(tmp_path, "feeds: [{url: 'https://top.example.org/feed', name: Top}]\n")
    code, out, _ = run_cli("feeds", "--config", str(cfg), "import", str(opml))
    assert code == 0
    assert "koreaherald" in out and "world-news" in out and "top.example.org" not in out
    target = tmp_path / "more.yaml"
    code, _, err = run_cli("feeds", "--config", str(cfg), "import", str(opml), "-o", str(target))
    assert code == 0 and "wrote" in err and "yna.co.kr" in target.read_text()
    code, _, err = run_cli("feeds", "--config", str(cfg), "import", str(opml), "-o", str(target))
    assert code == 1 and "exists" in err
    bad = tmp_path / "bad.opml"
    bad.write_bytes(b"<html/>")
    code, _, err = run_cli("feeds", "--config", str(cfg), "import", str(bad))
    assert code == 1 and f"{bad}: the root element is <html>" in err


def test_feeds_export_writes_opml_without_secrets(tmp_path: Path) -> None:
    cfg = config_file(
        tmp_path,
        """
        feeds:
          - {url: 'https://a.example.org/rss', name: A, tags: [asia, wire]}
          - {url: 'https://u:pw-SECRET@b.example.org/rss'}
          - {url: 'https://c.example.org/rss?key=TOKEN-SECRET'}
          - {google_news: 'Russia'}
          - {path: local.xml}
        """,
    )
    out_file = tmp_path / "out.opml"
    code, _, err = run_cli("feeds", "--config", str(cfg), "export", "-o", str(out_file))
    assert code == 0
    data = out_file.read_bytes()
    assert b"SECRET" not in data and "SECRET" not in err
    assert "left out 2 whose URL carries credentials and 1 local file(s)" in err
    back = read_opml_feeds(data)
    assert back[0].url == "https://a.example.org/rss"
    assert back[0].tags == ("asia", "wire") and back[1].url.startswith("https://news.google.com/")
    assert write_opml([], title="t", now=datetime.now(UTC)).startswith(b"<?xml")


# --------------------------------------------------------------------------- feeds + poll --once


def test_feeds_health_summary_failing_and_json(tmp_path: Path, server: FeedServer) -> None:
    server.route("/ok.xml", body=rss(Item("x", "http://e.org/1")))
    server.route("/bad.xml", status=500)
    server.route("/gone.xml", status=410)
    cfg = config_file(
        tmp_path,
        f"""
        feeds:
          - {{url: "{server.url("/ok.xml")}", name: ok}}
          - {{url: "{server.url("/bad.xml")}", name: bad}}
          - {{url: "{server.url("/gone.xml")}", name: gone}}
        """,
    )
    code, out, err = run_cli("poll", "--once", "--config", str(cfg))
    assert code == 1  # --fail-on any (the default)
    assert "bad: FAILED" in err and "gone: GONE" in err
    assert run_cli("poll", "--once", "--fail-on", "none", "--config", str(cfg))[0] == 0
    assert run_cli("poll", "--once", "--fail-on", "all", "--config", str(cfg))[0] == 0
    assert server.hits("/gone.xml") == 1  # gone: not fetched again
    code, out, _ = run_cli("feeds", "--config", str(cfg))
    assert code == 0
    assert out.splitlines()[-1] == "3 feeds: 1 ok, 1 failing, 1 gone; 1 articles stored"
    code, out, _ = run_cli("feeds", "--config", str(cfg), "--failing")
    assert code == 1 and "bad" in out and "gone" in out and "\nok " not in out
    code, out, _ = run_cli("feeds", "--config", str(cfg), "--json")
    document = json.loads(out)
    health = {f["feed"]: (f["health"], f["consecutive_errors"]) for f in document["feeds"]}
    assert health == {"ok": ("ok", 0), "bad": ("failing", 3), "gone": ("gone", 1)}


def test_poll_without_once_says_what_to_use(tmp_path: Path) -> None:
    code, _, err = run_cli("poll", "--config", str(tmp_path / "x.yaml"))
    assert code == 2 and "poll --once" in err and "newswatch run" in err

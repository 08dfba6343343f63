"""Feed URLs shown to people and used as link bases carry no secret."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest

from newswatch.config import ConfigError, load_config
from newswatch.notify.redact import link_base, mask_feed_url

URL = "https://nw:pw-1234@feeds.example.org:8443/private/feed.xml?token=tok-5678&x=1#top"


@pytest.mark.parametrize(
    ("url", "base"),
    [
        (URL, "https://feeds.example.org:8443/private/feed.xml"),
        ("http://example.org", "http://example.org"),
        ("file:///srv/feeds/a.xml", "file:///srv/feeds/a.xml"),
        ("feeds/a.xml?x=1", "feeds/a.xml"),
    ],
)
def test_link_base_drops_credentials_query_and_fragment(url: str, base: str) -> None:
    assert link_base(url) == base


@pytest.mark.parametrize(
    "ref", ["", "#frag", "item/1", "/abs", "?page=2", "https://other.example/x", "../up"]
)
def test_links_resolve_as_before_except_for_the_feeds_own_query(ref: str) -> None:
    resolved = urljoin(link_base(URL), ref)
    assert "tok-5678" not in resolved and "pw-1234" not in resolved
    if ref not in ("", "#frag"):  # only these would have taken the feed's query
        assert resolved == urljoin(URL.replace("nw:pw-1234@", ""), ref)


def test_mask_feed_url() -> None:
    assert mask_feed_url(URL) == "https://feeds.example.org:8443/private/feed.xml?token=****&x=****"


def test_a_bad_feed_url_is_reported_masked(tmp_path: Path) -> None:
    config = tmp_path / "newswatch.yaml"
    config.write_text('feeds: [{url: "ftp://nw:${PW}@host/feed?token=${T}"}]\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={"PW": "pw-1234", "T": "tok-5678"})
    text = str(caught.value)
    assert "ftp://host/feed?token=****" in text
    assert "pw-1234" not in text and "tok-5678" not in text

"""Feeds: fetch (httpx) -> parse (feedparser, JSON Feed; in ``parsepool``
worker processes) -> normalize (pure); discover (pure).

Each step is its own module with a small surface; this package re-exports it.
"""

from newswatch.feeds.discover import discover_feeds
from newswatch.feeds.fetch import Fetcher, default_user_agent, host_key
from newswatch.feeds.normalize import (
    canonical_url,
    entry_key,
    html_to_text,
    normalize_entry,
    normalize_feed,
    story_key,
)
from newswatch.feeds.parse import (
    FeedParseError,
    body_digest,
    declared_interval,
    parse_feed,
    parse_feed_async,
)
from newswatch.feeds.parsepool import InlineParser, ParsePool, Parser, make_parser

__all__ = [
    "FeedParseError",
    "Fetcher",
    "InlineParser",
    "ParsePool",
    "Parser",
    "body_digest",
    "canonical_url",
    "declared_interval",
    "default_user_agent",
    "discover_feeds",
    "entry_key",
    "host_key",
    "html_to_text",
    "make_parser",
    "normalize_entry",
    "normalize_feed",
    "parse_feed",
    "parse_feed_async",
    "story_key",
]

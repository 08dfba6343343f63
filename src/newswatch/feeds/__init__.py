"""Feeds: fetch (httpx) -> parse (feedparser) -> normalize (pure); discover (pure).

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
from newswatch.feeds.parse import FeedParseError, parse_feed, parse_feed_async

__all__ = [
    "FeedParseError",
    "Fetcher",
    "canonical_url",
    "default_user_agent",
    "discover_feeds",
    "entry_key",
    "host_key",
    "html_to_text",
    "normalize_entry",
    "normalize_feed",
    "parse_feed",
    "parse_feed_async",
    "story_key",
]

"""The poll decider: what one poll of one feed means. Pure.

Like reader's ``Decider``, nothing here touches the network, the store or
the clock: ``decide_poll`` takes the feed, its stored state, what the fetch
brought, the document's entries (already sorted into new, changed and seen
by ``select_entries``), the stored entries they matched, the rules, ``now``
and a random source, and returns a ``PollIntent``: the feed's state update,
the articles to store with their matches and routes, the log lines, and any
operator notice. The executor (``poll.execute``) only carries it out.

What an entry is (see also docs/decisions.md, "what an edit does"):

- **new**: its key is not stored. It may alert, unless the poll is silent
  (a first poll without backfill, or a key-rewrite storm).
- **seen**: its key is stored with the same content hash: nothing to do.
- **edit**: its key is stored and its content changed, but the link or the
  title stayed. The stored article is updated; it alerts only rules that
  newly match its story (the store checks), never a rule that fired already.
- **reused GUID**: its key is stored but the link and the title both
  changed: another story under a recycled GUID. It is stored as a new entry
  under a derived key (``derived_key``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal, Protocol

from newswatch.feeds.normalize import entry_key, story_key
from newswatch.identity import identity_keys, normalize_title
from newswatch.model import Article, FetchResult, Match, ParsedEntry, Route
from newswatch.schedule import (
    Backfill,
    adaptive_interval,
    alertable,
    failure_delay,
    jittered,
    respect_hints,
)
from newswatch.store.base import KEEP, FeedState, FeedUpdate, IngestItem, KnownEntry, _Keep

# A poll that finds none of the feed's stored keys and at least this many new
# ones is a key rewrite (a CMS migration, http -> https GUIDs), not news:
# it is recorded silently and logged once. Fewer than this is a busy feed's
# normal turnover between two polls. (reader caps a similar storm of
# content changes with HASH_CHANGED_LIMIT = 24.)
KEY_REWRITE_MIN_NEW: Final = 10

Outcome = Literal["updated", "not_modified", "unchanged", "failed", "gone"]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class FeedPolicy:
    """What the decider needs of a feed's configuration (no URL)."""

    key: str
    label: str
    named: bool  # the config gave a name (else the feed's own title shows)
    every: timedelta | None
    backfill: Backfill
    source: str  # the configured URL or file URI: secrets are found in it, never shown


@dataclass(frozen=True, slots=True)
class PollSettings:
    """The poll settings the decider applies (from ``config.poll`` and the top level)."""

    every: timedelta
    min_interval: timedelta
    max_interval: timedelta
    jitter: float
    max_backoff: timedelta
    alert_after: timedelta
    admin_channel: str | None


@dataclass(frozen=True, slots=True)
class Candidate:
    """One entry of a document, before normalizing: its key and the hash of
    its raw content (an edit changes the hash)."""

    entry: ParsedEntry
    key: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Selection:
    """A document's entries sorted against what the store holds."""

    new: tuple[Candidate, ...]
    changed: tuple[Candidate, ...]
    seen: tuple[str, ...]
    # A later entry of the same document with an earlier one's key.
    repeated: tuple[Candidate, ...] = ()


@dataclass(frozen=True, slots=True)
class Fresh:
    """A normalized entry that needs a decision: new, changed or repeated."""

    article: Article
    content_hash: str
    kind: Literal["new", "changed", "repeated"]


@dataclass(frozen=True, slots=True)
class Document:
    """A parsed document as the decider sees it."""

    title: str
    warning: str | None
    fresh: tuple[Fresh, ...]
    seen: tuple[str, ...]
    entries: int
    published: tuple[datetime, ...]  # of every entry that has a date
    declared: timedelta | None  # <ttl> / sy:updatePeriod
    body_hash: str | None
    # The repeated keys whose first occurrence in this document was stored:
    # the candidate article of that first occurrence, to compare against.
    firsts: Mapping[str, Article] = field(default_factory=dict)


class RuleSet(Protocol):
    """What the decider needs of the rules: ``poll.Rules`` is one."""

    def match(self, article: Article) -> list[Match]: ...
    def routes(self, match: Match, now: datetime) -> tuple[Route, ...]: ...


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Notice:
    """An operator notice for ``admin_channel``: a feed failing too long, or back."""

    channel: str
    key: str  # idempotency key: one notice per feed and failing spell
    text: str


@dataclass(frozen=True, slots=True)
class PollIntent:
    """Everything one poll decided. ``items`` is empty and ``seen_again``
    too for a 304, an unchanged body or a failure: then the update alone is
    recorded (``record_polls``), else ``ingest`` stores it all at once."""

    feed_key: str
    label: str
    outcome: Outcome
    update: FeedUpdate
    items: tuple[IngestItem, ...] = ()
    seen_again: tuple[str, ...] = ()
    matches: tuple[Match, ...] = ()
    entries: int = 0
    error: str | None = None
    warning: str | None = None
    logs: tuple[tuple[int, str], ...] = ()
    notices: tuple[Notice, ...] = ()
    storm: bool = False
    parse_failed: bool = False  # the error is the document's, not the fetch's
    silent_first_poll: bool = False  # a first poll that recorded without alerting

    @property
    def ingests(self) -> bool:
        return bool(self.items or self.seen_again) or self.outcome == "updated"


# --------------------------------------------------------------------------- entries


def content_hash(entry: ParsedEntry) -> str:
    """A hash of what a reader sees of an entry (title, link, text, author,
    categories); a change is an edit. Raw fields, so no normalizing is needed
    to tell that nothing changed."""
    parts = [entry.title, entry.link or "", entry.summary, entry.content, entry.author]
    parts.extend(entry.categories)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def candidates(entries: Sequence[ParsedEntry]) -> list[Candidate]:
    """Each entry with its key and content hash; empty husks left out."""
    out = []
    for entry in entries:
        if not (
            entry.title.strip() or entry.link or entry.summary.strip() or entry.content.strip()
        ):
            continue
        out.append(Candidate(entry, entry_key(entry), content_hash(entry)))
    return out


def select_entries(found: Sequence[Candidate], known: Mapping[str, KnownEntry]) -> Selection:
    """Sort a document's candidates: new keys, stored keys whose content
    changed, stored keys unchanged, and later repeats of a key within the
    document that differ from its first occurrence (a reused GUID, maybe).

    A stored entry without a content hash (written before hashes) counts
    as unchanged: only a hash can tell an edit.
    """
    new: list[Candidate] = []
    changed: list[Candidate] = []
    seen: list[str] = []
    repeated: list[Candidate] = []
    firsts: dict[str, str] = {}
    for cand in found:
        first = firsts.get(cand.key)
        if first is not None:
            if first != cand.content_hash:
                repeated.append(cand)
            continue
        firsts[cand.key] = cand.content_hash
        stored = known.get(cand.key)
        if stored is None:
            new.append(cand)
        elif stored.content_hash is None or stored.content_hash == cand.content_hash:
            seen.append(cand.key)
        else:
            changed.append(cand)
    return Selection(tuple(new), tuple(changed), tuple(seen), tuple(repeated))


def derived_key(key: str, article: Article) -> str:
    """The entry key of another story under a reused key: the key and a
    hash of the story's link and title."""
    digest = hashlib.sha256(f"{article.canonical_url}\0{article.title}".encode()).hexdigest()
    return f"{key}#{digest[:16]}"


def is_other_story(article: Article, link: str, title: str) -> bool:
    """Whether ``article`` is another story than one with this canonical
    link and title: both differ (an edit changes one of them at most)."""
    return article.canonical_url != link and normalize_title(article.title) != normalize_title(
        title
    )


def rekey(article: Article, key: str) -> Article:
    return dataclasses.replace(
        article,
        entry_key=key,
        story_key=story_key(
            canonical_url=article.canonical_url, feed_key=article.feed_key, entry_key=key
        ),
    )


def derived_lookups(doc: Document, known: Mapping[str, KnownEntry]) -> list[str]:
    """The derived keys the decider will ask ``known`` about: look them up
    before deciding (a reused GUID's story may be stored already)."""
    keys = []
    for fresh in doc.fresh:
        other = _other_story_key(fresh, doc, known)
        if other is not None:
            keys.append(other)
    return keys


def _other_story_key(fresh: Fresh, doc: Document, known: Mapping[str, KnownEntry]) -> str | None:
    article = fresh.article
    if fresh.kind == "changed":
        stored = known.get(article.entry_key)
        if stored is not None and is_other_story(article, stored.canonical_url, stored.title):
            return derived_key(article.entry_key, article)
    elif fresh.kind == "repeated":
        first = doc.firsts.get(article.entry_key)
        if first is None or is_other_story(article, first.canonical_url, first.title):
            return derived_key(article.entry_key, article)
    return None


# --------------------------------------------------------------------------- the decision


def decide_poll(
    feed: FeedPolicy,
    state: FeedState | None,
    fetch: FetchResult,
    doc: Document | None,
    known: Mapping[str, KnownEntry],
    rules: RuleSet,
    now: datetime,
    rng: random.Random,
    settings: PollSettings,
    *,
    parse_error: str | None = None,
    discovered: str | None = None,
) -> PollIntent:
    """Decide one poll. ``doc`` is None for a 304, a failure, an unchanged
    body (``fetch.body`` set, its hash the stored one) or a parse failure
    (``parse_error``). ``discovered``: the configured URL was a web page and
    this feed URL, found on it, was fetched instead (autodiscovery)."""
    if fetch.error is not None or parse_error is not None:
        intent = _failed(feed, state, fetch, parse_error or fetch.error or "", now, rng, settings)
        return dataclasses.replace(intent, parse_failed=parse_error is not None)
    interval = _interval(feed, state, fetch, doc, now, settings)
    base = _success_update(feed, state, fetch, now, rng, settings, interval, discovered)
    logs = list(base.logs)
    if doc is None:
        outcome: Outcome = "not_modified" if fetch.not_modified else "unchanged"
        logs.append((logging.DEBUG, f"feed {feed.label}: {outcome.replace('_', ' ')}"))
        return PollIntent(
            feed.key, feed.label, outcome, base.update, logs=tuple(logs), notices=base.notices
        )
    update = dataclasses.replace(
        base.update,
        body_hash=doc.body_hash if doc.body_hash is not None else KEEP,
        error=doc.warning,
        title=_title_update(feed, state, doc),
    )
    items, matches, storm, seen_extra, entry_logs = _entries(feed, state, doc, known, rules, now)
    first_poll = state is None or state.last_success_at is None
    silent = first_poll and bool(items) and not any(i.evaluated for i in items)
    logs.extend(entry_logs)
    if doc.warning:
        logs.append((logging.DEBUG, f"feed {feed.label}: {doc.warning}"))
    return PollIntent(
        feed.key,
        _shown_label(feed, doc.title),
        "updated",
        update,
        items=tuple(items),
        seen_again=doc.seen + tuple(seen_extra),
        matches=tuple(matches),
        entries=doc.entries,
        warning=doc.warning,
        logs=tuple(logs),
        notices=base.notices,
        storm=storm,
        silent_first_poll=silent,
    )


def _shown_label(feed: FeedPolicy, title: str) -> str:
    title = " ".join(title.split())[:200]
    return feed.label if feed.named or not title else title


def _title_update(feed: FeedPolicy, state: FeedState | None, doc: Document) -> str | _Keep | None:
    title = " ".join(doc.title.split())[:200] or None
    if state is not None and state.title == title:
        return KEEP
    return title


def _interval(
    feed: FeedPolicy,
    state: FeedState | None,
    fetch: FetchResult,
    doc: Document | None,
    now: datetime,
    settings: PollSettings,
) -> timedelta:
    """The feed's polling interval after a successful poll."""
    if feed.every is not None:
        chosen = feed.every
    elif doc is not None:
        floor = min(settings.min_interval, settings.every)
        chosen = adaptive_interval(
            doc.published,
            now=now,
            base=settings.every,
            floor=floor,
            ceiling=settings.max_interval,
        )
    elif state is not None and state.interval_s:
        chosen = timedelta(seconds=state.interval_s)  # a 304 says nothing new
    else:
        chosen = settings.every
    declared = doc.declared if doc is not None else None
    return respect_hints(chosen, declared, fetch.max_age)


def _configured_interval(
    feed: FeedPolicy, state: FeedState | None, settings: PollSettings
) -> timedelta:
    if feed.every is not None:
        return feed.every
    if state is not None and state.interval_s:
        return timedelta(seconds=state.interval_s)
    return settings.every


@dataclass(frozen=True, slots=True)
class _Base:
    update: FeedUpdate
    logs: tuple[tuple[int, str], ...] = ()
    notices: tuple[Notice, ...] = ()


def _success_update(
    feed: FeedPolicy,
    state: FeedState | None,
    fetch: FetchResult,
    now: datetime,
    rng: random.Random,
    settings: PollSettings,
    interval: timedelta,
    discovered: str | None = None,
) -> _Base:
    logs: list[tuple[int, str]] = []
    notices: list[Notice] = []
    moved_to: str | _Keep | None = KEEP
    status = "ok"
    if discovered is not None:
        from newswatch.notify.redact import mask_feed_url

        secret = any(s in discovered for s in url_credentials(feed.source))
        if not secret:
            moved_to, status = discovered, "discovered"
        logs.append(
            (
                logging.WARNING,
                f"feed {feed.label}: the configured URL is a web page; found its feed "
                f"{mask_feed_url(discovered)}"
                + (
                    " (it carries the configured credentials: put it in the configuration)"
                    if secret
                    else " and poll that from now on (put it in the configuration to skip the page)"
                ),
            )
        )
    elif fetch.moved_to is not None:
        moved, log_line = _moved(feed, state, fetch.moved_to)
        logs.append(log_line)
        if moved is not None:
            moved_to, status = moved, "moved"
    elif state is not None and state.moved_to:
        status = state.status if state.status in ("moved", "discovered") else "moved"
    alerted_at: datetime | _Keep | None = KEEP
    if state is not None and state.alerted_at is not None:
        alerted_at = None
        since = state.failing_since or state.alerted_at
        text = (
            f"feed {feed.label} is back: polled fine after failing since {since:%Y-%m-%d %H:%M} UTC"
        )
        logs.append((logging.INFO, text))
        if settings.admin_channel:
            notices.append(Notice(settings.admin_channel, _notice_key(feed, since, "ok"), text))
    update = FeedUpdate(
        feed.key,
        now,
        jittered(now, interval, settings.jitter, rng),
        ok=True,
        last_status=fetch.status,
        status=status,
        # Validators are kept unless the server sent new ones (a 304 may).
        etag=fetch.etag if fetch.etag is not None or not fetch.not_modified else KEEP,
        last_modified=(
            fetch.last_modified
            if fetch.last_modified is not None or not fetch.not_modified
            else KEEP
        ),
        interval_s=round(interval.total_seconds()),
        moved_to=moved_to,
        alerted_at=alerted_at,
    )
    return _Base(update, tuple(logs), tuple(notices))


def _moved(
    feed: FeedPolicy, state: FeedState | None, moved_to: str
) -> tuple[str | None, tuple[int, str]]:
    """(what to store as moved_to, the log line) for a permanent redirect."""
    from newswatch.notify.redact import mask_feed_url

    shown = mask_feed_url(moved_to)
    if any(secret in moved_to for secret in url_credentials(feed.source)):
        return None, (
            logging.WARNING,
            f"feed {feed.label} moved permanently to {shown}; the new URL carries the "
            "configured URL's credentials, so it is not stored: update the feed's url "
            "in the configuration",
        )
    if state is not None and state.moved_to == moved_to:
        return moved_to, (logging.DEBUG, f"feed {feed.label}: still at {shown}")
    return moved_to, (
        logging.WARNING,
        f"feed {feed.label} moved permanently to {shown}; polling the new URL from now on "
        "(update the configuration to make it permanent)",
    )


# Secret fragments shorter than this are not looked for: "1" or "en" in a
# query would match any URL.
_MIN_SECRET_CHARS: Final = 4


def url_credentials(url: str) -> list[str]:
    """The parts of a configured URL that may be credentials: user, password
    and query values (what ``mask_feed_url`` hides), long enough to search."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.username or "", parts.password or ""]
    found += [v for _, v in parse_qsl(parts.query, keep_blank_values=True)]
    found += [unquote(v) for v in list(found)]
    return sorted({s for s in found if len(s) >= _MIN_SECRET_CHARS})


def _notice_key(feed: FeedPolicy, since: datetime, what: str) -> str:
    digest = hashlib.sha256(f"{feed.key}\0{since.isoformat()}\0{what}".encode()).hexdigest()
    return f"nwf-{digest[:28]}"


def _failed(
    feed: FeedPolicy,
    state: FeedState | None,
    fetch: FetchResult,
    error: str,
    now: datetime,
    rng: random.Random,
    settings: PollSettings,
) -> PollIntent:
    errors = (state.consecutive_errors if state else 0) + 1
    interval = _configured_interval(feed, state, settings)
    logs: list[tuple[int, str]] = []
    notices: list[Notice] = []
    if fetch.gone:
        # 410: the publisher says the feed is gone for good. Disabled, with
        # that status, until the configuration changes its URL.
        text = f"feed {feed.label}: {error}; the feed is gone (HTTP 410), polling stopped"
        update = FeedUpdate(
            feed.key,
            now,
            now + HINT_GONE,
            ok=False,
            error=error,
            status="gone",
            last_status=fetch.status,
        )
        return PollIntent(
            feed.key, feed.label, "gone", update, error=error, logs=((logging.ERROR, text),)
        )
    delay = failure_delay(
        interval, errors, max_backoff=settings.max_backoff, retry_after=fetch.retry_after
    )
    nxt = jittered(now, delay, settings.jitter, rng)
    # DEBUG: the daemon's cycle line names feeds that start failing.
    logs.append(
        (
            logging.DEBUG,
            f"feed {feed.label}: {error} (failure {errors} in a row; "
            f"next try {nxt:%Y-%m-%d %H:%M:%S} UTC)",
        )
    )
    alerted_at: datetime | _Keep | None = KEEP
    since = (state.failing_since if state else None) or now
    already = state is not None and state.alerted_at is not None
    if settings.admin_channel and not already and now - since >= settings.alert_after:
        alerted_at = now
        hours = (now - since).total_seconds() / 3600
        text = (
            f"feed {feed.label} has been failing for {hours:.0f} h "
            f"({errors} polls in a row): {error}"
        )
        notices.append(Notice(settings.admin_channel, _notice_key(feed, since, "failing"), text))
        logs.append((logging.ERROR, text + f"; told {settings.admin_channel}"))
    update = FeedUpdate(
        feed.key,
        now,
        nxt,
        ok=False,
        error=error,
        status="failing",
        last_status=fetch.status,
        alerted_at=alerted_at,
    )
    return PollIntent(
        feed.key,
        feed.label,
        "failed",
        update,
        error=error,
        logs=tuple(logs),
        notices=tuple(notices),
    )


# A gone feed's row is kept, with a next poll this far away; claims skip
# gone feeds anyway (status), so this only matters to listings.
HINT_GONE: Final = timedelta(days=365)


def _matched(
    rules: RuleSet, article: Article, now: datetime
) -> tuple[tuple[Match, ...], tuple[Route, ...]]:
    """The article's matches and their routes. A match no route will send
    keeps no explanation: its snippet (the costly part, ~38 us a match)
    is built only for matches that may go out."""
    found: list[Match] = []
    routes: list[Route] = []
    for match in rules.match(article):
        its = rules.routes(match, now)
        routes.extend(its)
        found.append(match if its else Match(match.rule, match.article))
    return tuple(found), tuple(routes)


def _entries(
    feed: FeedPolicy,
    state: FeedState | None,
    doc: Document,
    known: Mapping[str, KnownEntry],
    rules: RuleSet,
    now: datetime,
) -> tuple[list[IngestItem], list[Match], bool, list[str], list[tuple[int, str]]]:
    """The items to store: new entries (maybe alerting), edits, and other
    stories under reused keys; whether this poll is a key-rewrite storm."""
    first_poll = state is None or state.last_success_at is None
    new: list[tuple[Article, str]] = []
    edits: list[tuple[Article, str]] = []
    seen_extra: list[str] = []
    for fresh in doc.fresh:
        other = _other_story_key(fresh, doc, known)
        if other is not None:
            stored = known.get(other)
            if stored is None:
                new.append((rekey(fresh.article, other), fresh.content_hash))
            elif stored.content_hash != fresh.content_hash:
                edits.append((rekey(fresh.article, other), fresh.content_hash))
            else:
                seen_extra.append(other)
            continue
        if fresh.kind == "new":
            new.append((fresh.article, fresh.content_hash))
        elif fresh.kind == "changed":
            edits.append((fresh.article, fresh.content_hash))
        # a repeat that is the same story as its first occurrence: nothing
    logs: list[tuple[int, str]] = []
    storm = (
        not first_poll
        and state is not None
        and state.articles > 0
        and not doc.seen
        and not edits
        and len(new) >= KEY_REWRITE_MIN_NEW
    )
    if storm:
        assert state is not None and state.last_success_at is not None
        last = state.last_success_at
        # Only what was published since the last good poll may be news.
        may_alert = [a.published is not None and a.published > last for a, _ in new]
        logs.append(
            (
                logging.WARNING,
                f"feed {feed.label}: none of its {state.articles} stored entries is in the "
                f"document and {len(new)} are new: taken for a rewrite of its entry ids, "
                f"recorded without alerting ({sum(may_alert)} published since the last poll "
                "may still alert)",
            )
        )
    else:
        may_alert = alertable(
            [a for a, _ in new], first_poll=first_poll, backfill=feed.backfill, now=now
        )
    items: list[IngestItem] = []
    matches: list[Match] = []
    # New entries that may alert and every edit are matched; an edit is
    # always evaluated (the store alerts only rules that newly match it).
    entries = [(a, d, ok, False) for (a, d), ok in zip(new, may_alert, strict=True)]
    entries += [(a, d, True, True) for a, d in edits]
    for article, digest, evaluated, edit in entries:
        found, routes = _matched(rules, article, now) if evaluated else ((), ())
        matches.extend(found)
        items.append(
            IngestItem(
                article=article,
                matches=found,
                routes=routes,
                identity_keys=identity_keys(article),
                evaluated=evaluated,
                edit=edit,
                content_hash=digest,
            )
        )
    if first_poll and new and not any(may_alert):
        logs.append(
            (
                logging.DEBUG,
                f"feed {feed.label}: first poll, recorded {len(new)} entries without "
                "alerting (set backfill to alert)",
            )
        )
    return items, matches, storm, seen_extra, logs

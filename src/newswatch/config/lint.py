"""Warnings: configurations that load, and yet silently break alerting.

``lint(config, locations)`` is pure (no files, no clock): the same
configuration always gives the same warnings, so ``newswatch check``, the
daemon's reload and a status page can all show them. Each warning is a
``Problem`` with severity "warning", in file and line order.

What it finds: lower-case and/or/not between words (searched as words), a
rule scoped to nothing, a rule that notifies nobody, a rule that can never
match, two feeds that are one, email addresses that do not parse, and an
empty configuration.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator
from email.utils import getaddresses
from typing import Final
from urllib.parse import urlsplit

from newswatch.config.models import Config, FeedConfig, RuleConfig
from newswatch.config.problems import DocPath, Locations, Problem
from newswatch.config.yamlsafe import caret_lines
from newswatch.keys import feed_key_for
from newswatch.notify.redact import mask_feed_url
from newswatch.rules import QueryError, RuleSpec
from newswatch.rules.compile import (
    AndPlan,
    Lowerer,
    NearLeaf,
    NotPlan,
    OrPlan,
    Plan,
    TermLeaf,
    fields_of,
)
from newswatch.rules.lexer import Tok, lex
from newswatch.rules.spec import AliasTable, expand_spec

_OPERATORS: Final = frozenset({"and", "or", "not"})
# Tokens that end a term (an operator may follow) and that start one.
_ENDS_TERM: Final = frozenset({"WORD", "PHRASE", "REGEX", "ALIAS", ")"})
_STARTS_TERM: Final = frozenset({"WORD", "PHRASE", "REGEX", "ALIAS", "FIELD", "(", "-", "NOT"})
_ADDR_RE: Final = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)*")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def lint(config: Config, locations: Locations) -> list[Problem]:
    """Every warning for ``config``, whose values were written at ``locations``."""
    warn = _Warner(locations)
    _empty(config, warn)
    _feeds(config, warn)
    _emails(config, warn)
    targets = _scope_targets(config.feeds)
    never = _NeverMatch(config)
    for i, rule in enumerate(config.rules):
        _lower_case_operators(rule, i, warn)
        _scope(rule, i, targets, warn)
        if not rule.notify:
            warn(
                ("rules", i, "name"),
                f"rule {rule.name!r} notifies no channel: its matches are recorded, "
                "and nobody is told (add notify: [CHANNEL])",
            )
        never.check(rule, i, warn)
    return sorted(warn.found, key=lambda p: (p.file, p.line))


class _Warner:
    def __init__(self, locations: Locations) -> None:
        self.locations = locations
        self.found: list[Problem] = []

    def __call__(self, path: DocPath, message: str) -> None:
        self.found.append(self.locations.problem(path, message, "warning"))


# ------------------------------------------------------------------ the whole file


def _empty(config: Config, warn: _Warner) -> None:
    if not (config.feeds or config.rules or config.channels):
        warn((), "the configuration is empty: no feeds, rules or channels")
        return
    if not config.feeds:
        warn((), "no feeds: nothing will be polled")
    if not config.rules:
        warn((), "no rules: nothing will alert")


# ------------------------------------------------------------------ feeds


def is_local_feed(feed: FeedConfig) -> bool:
    """A local file, or a URL on this machine (127.0.0.0/8, ::1, localhost)."""
    if feed.google_news is not None:
        return False
    if feed.path is not None or feed.url is None:
        return True
    try:
        parts = urlsplit(feed.url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return False
    if parts.scheme == "file":
        return True
    # RFC 6761: localhost and its subdomains always resolve to loopback.
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def feed_label(feed: FeedConfig) -> str:
    """The feed's name, or its URL without credentials, path or query (never a secret)."""
    if feed.name:
        return feed.name
    if feed.url is None:
        return feed.label if feed.google_news is not None else feed.path or "?"
    try:
        parts = urlsplit(feed.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(unparseable URL)"
    return (
        f"{parts.scheme}://{host}{port}/..."
        if parts.path.strip("/")
        else f"{parts.scheme}://{host}{port}/"
    )


def _same_url(url: str) -> str:
    """A URL with what rarely tells two feeds apart removed: the scheme, the case
    of the host, a default port, a trailing slash, the fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host += f":{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{parts.path.rstrip('/')}{query}"


def _feeds(config: Config, warn: _Warner) -> None:
    names: dict[str, int] = {}
    urls: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        if feed.name:
            first = names.setdefault(feed.name.casefold(), i)
            if first != i:
                warn(
                    ("feeds", i, "name"),
                    f"two feeds are named {feed.name!r} (also feeds[{first}]); "
                    "rules scoped to that name watch both",
                )
        if feed.url:
            same = urls.setdefault(_same_url(feed.url), i)
            # The very same URL is an error (a duplicate feed), reported on load.
            if same != i and config.feeds[same].url != feed.url:
                warn(
                    ("feeds", i, "url"),
                    f"feed {feed_label(feed)!r} has the same URL as feeds[{same}] but for "
                    "http/https, letter case, port or a trailing slash: one feed polled twice",
                )


# ------------------------------------------------------------------ channels


def _emails(config: Config, warn: _Warner) -> None:
    for name, channel in config.channels.items():
        if channel.type != "email":
            continue
        for j, address in enumerate(channel.to):
            problem = address_problem(address)
            if problem:
                warn(("channels", name, "to", j), f"channel {name!r}: {problem}")
        problem = address_problem(channel.from_)
        if problem:
            warn(("channels", name, "from"), f"channel {name!r}: {problem}")


def address_problem(text: str) -> str | None:
    """Why ``text`` is not one email address ("Name <a@b.org>" or "a@b.org"), or None."""
    found = getaddresses([text])
    if len(found) > 1:
        return f"{text!r} holds {len(found)} addresses; list them: [a@example.org, b@example.org]"
    address = found[0][1] if found else ""
    if not address or not _ADDR_RE.fullmatch(address):
        return f"{text!r} is not an email address (like desk@example.org)"
    return None


# ------------------------------------------------------------------ rules


def _lower_case_operators(rule: RuleConfig, i: int, warn: _Warner) -> None:
    parts: list[tuple[DocPath, str, str]] = []
    if rule.query:
        parts.append((("rules", i, "query"), "query", rule.query))
    for key in ("all", "any", "none"):
        for j, entry in enumerate(getattr(rule, key)):
            parts.append((("rules", i, key, j), f"{key}[{j}]", entry))
    for path, label, text in parts:
        for tok in _lower_case_ops(text):
            word = tok.value.upper()
            how = (
                "is searched as a word"
                if label == "query"
                else "makes the entry one phrase, searched as written"
            )
            warn(
                path,
                f"rule {rule.name!r} ({label}): lower-case {tok.value!r} {how}; "
                f"did you mean {word}?\n{caret_lines(text, tok.pos)}",
            )


def _lower_case_ops(text: str) -> Iterator[Tok]:
    try:
        toks = lex(text)
    except QueryError:  # reported as an error by compiling
        return
    for k, tok in enumerate(toks):
        if tok.kind != "WORD" or tok.flag or tok.value.casefold() not in _OPERATORS:
            continue
        before = toks[k - 1].kind if k else None
        after = toks[k + 1].kind
        if after not in _STARTS_TERM:
            continue
        if tok.value.casefold() != "not" and before not in _ENDS_TERM:
            continue
        yield tok


def _scope_targets(feeds: tuple[FeedConfig, ...]) -> dict[str, str]:
    """What a rule's ``feeds:`` entries are compared with, casefolded -> as written.

    The same as the rule index compares (``rules.doc.Doc.scope_keys``: the
    article's ``feed_key``, its ``source`` and ``tag:NAME``, which the poller
    fills from ``feed.key``, ``feed.display_name`` and ``feed.tags``), so a
    warning here means the scope really never matches."""
    out: dict[str, str] = {}
    for feed in feeds:
        for target in (feed.key, feed.display_name, *(f"tag:{t}" for t in feed.tags)):
            out.setdefault(target.casefold(), target)
    return out


def _scope(rule: RuleConfig, i: int, targets: dict[str, str], warn: _Warner) -> None:
    for j, entry in enumerate(rule.feeds):
        url = re.match(r"^(https?|file)://", entry) is not None
        # A URL entry names its feed by key (as the rule index compares it).
        if entry.casefold() in targets or (url and feed_key_for(entry) in targets):
            continue
        close = difflib.get_close_matches(entry.casefold(), targets, n=1, cutoff=0.75)
        close = [] if url else close
        hint = f"; did you mean {targets[close[0]]!r}?" if close else ""
        # A URL may carry credentials: it is shown masked.
        shown = mask_feed_url(entry) if url else entry
        warn(
            ("rules", i, "feeds", j),
            f"rule {rule.name!r} is scoped to {shown!r}, which matches no feed "
            f"(feed names, URLs or tag:NAME){hint}",
        )


class _NeverMatch:
    """A rule that requires a term it also excludes (``all: [x]`` with
    ``none: [x]``, or ``a -a``) matches nothing.

    Judged on the compiled plan, so "Pyŏngyang" and "-pyongyang" are one
    term, as the matcher folds them: a required term is a direct conjunct (or
    a one-term side of NEAR), an excluded one sits under a NOT (or a NOT of
    an OR). Sound, not complete: a warning is always right, and some rules
    that cannot match (through ORs) pass unseen.
    """

    def __init__(self, config: Config) -> None:
        self.aliases = AliasTable(config.aliases)
        self.lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}

    def check(self, rule: RuleConfig, i: int, warn: _Warner) -> None:
        spec = RuleSpec(
            rule.name, rule.query, rule.all, rule.any, rule.none, rule.case == "sensitive"
        )
        try:
            node = expand_spec(spec, self.aliases)
        except QueryError:  # reported as an error by compiling
            return
        plan = self.lowerers[rule.case != "sensitive"].lower(node)
        required: list[TermLeaf] = []
        excluded: list[TermLeaf] = []
        _conjuncts(plan, required, excluded)
        for need in required:
            for bar in excluded:
                inside = set(fields_of(need.field)) <= set(fields_of(bar.field))
                if need.pattern.tokens == bar.pattern.tokens and inside:
                    warn(
                        ("rules", i, "name"),
                        f"rule {rule.name!r} can never match: it requires {need.label} "
                        f"and excludes {bar.label}",
                    )
                    return


def _conjuncts(plan: Plan, required: list[TermLeaf], excluded: list[TermLeaf]) -> None:
    if isinstance(plan, AndPlan):
        for child in plan.children:
            _conjuncts(child, required, excluded)
    elif isinstance(plan, TermLeaf):
        required.append(plan)
    elif isinstance(plan, NearLeaf):
        required.extend(side[0] for side in (plan.left, plan.right) if len(side) == 1)
    elif isinstance(plan, NotPlan):
        child = plan.child
        if isinstance(child, TermLeaf):
            excluded.append(child)
        elif isinstance(child, OrPlan):  # NOT (a OR b) excludes a and b
            excluded.extend(c for c in child.children if isinstance(c, TermLeaf))

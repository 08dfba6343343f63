"""Loading: YAML files -> validated ``Config``, every problem with file, line and field.

Each step is linear in the size of the configuration:

1. parse the main file and every rule file with ``yamlsafe`` (bounded size,
   depth and aliases; a ``Loc`` tree beside the values), reusing a
   ``ConfigCache`` entry when a file's (mtime, size, inode) has not changed;
2. gather rules (inline, files, folders) and feeds (inline, OPML) into one
   document, grafting each rule's and feed's ``Loc`` subtree in O(1);
3. interpolate ``${VAR}`` secrets (``sources``);
4. validate with pydantic, its errors said in YAML terms (``messages``);
5. cross-check names, references, the time zone and the poll floor, and
   compile every rule into the index.

Every problem becomes a ``Problem`` of one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from newswatch.config.cache import ConfigCache
from newswatch.config.lint import feed_label, is_local_feed, lint
from newswatch.config.messages import translate
from newswatch.config.models import Config
from newswatch.config.problems import ConfigError, DocPath, Loc, Locations, Problem, dotted
from newswatch.config.sources import interpolate, read_opml, rule_sources
from newswatch.keys import feed_key_for
from newswatch.rules import RuleIndex, RuleSpec, compile_checked

# Politeness: a publisher sees a client polling faster than once a minute as
# abuse (and may ban it). Feeds on this machine (tests, local bridges) may.
MIN_REMOTE_INTERVAL: Final = timedelta(minutes=1)

_RULE_FILE_KEYS: Final = ("aliases", "rules")


def load_config(
    path: str | Path, env: Mapping[str, str] | None = None, *, cache: ConfigCache | None = None
) -> LoadedConfig:
    """Read, interpolate, validate, compile; raise ConfigError listing every problem.

    Relative paths in the file (feeds' `path`, `rules`) are resolved against
    the folder of the configuration file, so the daemon can run from
    anywhere. Pass the previous load's ``cache`` (``loaded.cache``) to skip
    re-parsing files that did not change.
    """
    path = Path(path)
    env = os.environ if env is None else env
    cache = ConfigCache() if cache is None else cache
    cache.start()
    try:
        return _load(path, env, cache)
    finally:
        cache.finish()


def _load(path: Path, env: Mapping[str, str], cache: ConfigCache) -> LoadedConfig:
    main = cache.parse(path)
    raw = {} if main.data is None else main.data
    if not isinstance(raw, dict):
        raise ConfigError(
            [Problem(str(path), 1, "", "the configuration must be a mapping of settings")]
        )
    root = main.loc if main.loc is not None else Loc(str(path), 1, {})
    # Never change what the cache holds: new top-level dicts, shared insides.
    top: dict[Any, Loc] = dict(root.children) if isinstance(root.children, dict) else {}
    locations = Locations(Loc(root.file, root.line, top))
    base = path.resolve().parent
    problems: list[Problem] = []

    rules = _Rules(raw, top, base, cache, problems)
    feeds, feed_locs = _expand_feeds(raw.get("feeds") or [], top.get("feeds"), base, problems)
    if feed_locs is not None:
        top["feeds"] = feed_locs
    data = {**raw, "feeds": feeds, "rules": rules.rules}
    top["rules"] = Loc(str(path), rules.line, rules.locs)
    if rules.aliases is not None:
        data["aliases"] = rules.aliases
        top["aliases"] = Loc(str(path), rules.alias_line, rules.alias_locs)

    hidden: set[DocPath] = set()
    secret_files: set[Path] = set()
    data = interpolate(data, env, locations, problems, hidden, secret_files)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        found = [locations.problem(*translate(err, hidden.__contains__)) for err in exc.errors()]
        found.sort(key=lambda p: (p.file, p.line))
        raise ConfigError(found) from None
    problems.extend(cross_check(config, locations))
    problems.extend(_check_templates(config, base, locations))
    index, rule_problems = _compile_rules(config, locations)
    problems.extend(rule_problems)
    if problems or index is None:
        raise ConfigError(problems)
    return LoadedConfig(
        config=config,
        path=path,
        files=(path, *rules.watched),
        index=index,
        locations=locations,
        cache=cache,
        hidden=frozenset(hidden),
        secret_files=tuple(sorted(secret_files)),
    )


class _Rules:
    """Inline rules and rule files gathered into one list, and their aliases.

    Each rule's ``Loc`` subtree is kept as is (from the main file or its rule
    file), so errors under ``rules[n]`` point into the file it came from.
    """

    def __init__(
        self,
        raw: dict[str, Any],
        top: dict[Any, Loc],
        base: Path,
        cache: ConfigCache,
        problems: list[Problem],
    ) -> None:
        self.problems = problems
        self.rules: list[Any] = []
        self.locs: list[Loc] = []
        self.watched: list[Path] = []
        given = raw.get("aliases")
        alias_loc = top.get("aliases")
        self.alias_line = alias_loc.line if alias_loc is not None else 1
        # Aliases that are not a mapping are left for validation to report.
        self.aliases: dict[Any, Any] | None = None
        self.alias_locs: dict[Any, Loc] = {}
        if given is None or isinstance(given, dict):
            self.aliases = dict(given or {})
            if alias_loc is not None and isinstance(alias_loc.children, dict):
                self.alias_locs = dict(alias_loc.children)
        value = raw.get("rules")
        rules_loc = top.get("rules")
        self.line = rules_loc.line if rules_loc is not None else 1
        if value is None:
            return
        sources, folders = rule_sources(value, base)
        self.watched.extend(folders)
        for src in sources:
            if isinstance(src, int):  # an inline rule
                self.rules.append(value[src])
                item = rules_loc.child(src) if rules_loc is not None else None
                self.locs.append(item or Loc(str(base), self.line))
            else:
                self.watched.append(src)
                self._file(src, cache)

    def _file(self, src: Path, cache: ConfigCache) -> None:
        try:
            parsed = cache.parse(src)
        except ConfigError as exc:
            self.problems.extend(exc.details)
            return
        data, loc = parsed.data, parsed.loc or Loc(str(src), 1)
        where = Locations(loc)
        at: DocPath = ()
        if isinstance(data, dict):  # {aliases: {...}, rules: [...]}
            for key in data:
                if key not in _RULE_FILE_KEYS:  # `rule:` would load no rules, silently
                    hint = difflib.get_close_matches(str(key), _RULE_FILE_KEYS, n=1)
                    also = f"; did you mean '{hint[0]}'?" if hint else " (use rules: and aliases:)"
                    self.problems.append(where.problem((key,), f"unknown setting '{key}'{also}"))
            self._aliases(data.get("aliases"), loc.child("aliases"), where)
            data, at = data.get("rules"), ("rules",)
            loc = loc.child("rules") or loc
        if data is None:
            return
        if not isinstance(data, list):
            self.problems.append(where.problem(at, "expected a list of rules"))
            return
        for i, rule in enumerate(data):
            self.rules.append(rule)
            self.locs.append(loc.child(i) or loc)

    def _aliases(self, given: Any, loc: Loc | None, where: Locations) -> None:
        if given is None:
            return
        if not isinstance(given, dict) or self.aliases is None:
            self.problems.append(where.problem(("aliases",), "aliases must be a mapping of lists"))
            return
        for name, value in given.items():
            item = (loc.child(name) if loc is not None else None) or where.root
            assert item is not None
            first = self.alias_locs.get(name)
            if first is not None:
                self.problems.append(
                    Problem(
                        item.file,
                        item.line,
                        dotted(("aliases", name)),
                        f"alias '{name}' is defined twice (first at {first.file}:{first.line})",
                    )
                )
                continue
            self.aliases[name] = value
            self.alias_locs[name] = item


def _expand_feeds(
    raw: Any, loc: Loc | None, base: Path, problems: list[Problem]
) -> tuple[Any, Loc | None]:
    """Resolve local paths and expand `- opml: FILE` entries into feeds.

    An OPML entry's other settings (every, tags, backfill) apply to each feed
    it lists, and its location stands for theirs; the OPML outline's
    `category` adds tags. Never changes ``raw`` (the cache may hold it).
    """
    if not isinstance(raw, list):
        return raw, None
    loc = loc or Loc("", 0, [])
    out: list[Any] = []
    locs: list[Loc] = []
    for i, feed in enumerate(raw):
        item = loc.child(i) or loc
        if isinstance(feed, dict) and "opml" in feed:
            settings = {k: v for k, v in feed.items() if k != "opml"}
            try:
                listed = read_opml(base / str(feed["opml"]))
            except (OSError, ValueError) as exc:
                at = item.child("opml") or item
                problems.append(Problem(at.file, at.line, f"feeds[{i}].opml", str(exc)))
                continue
            tags = settings.get("tags", [])
            for entry in listed:
                if isinstance(tags, list):
                    entry = {**settings, **entry, "tags": [*tags, *entry["tags"]]}
                else:  # not a list: validation says so, once per feed
                    entry = {**settings, **entry, "tags": tags}
                out.append(entry)
                locs.append(item)
            continue
        if isinstance(feed, dict) and isinstance(feed.get("path"), str):
            feed = {**feed, "path": str((base / feed["path"]).resolve())}
        out.append(feed)
        locs.append(item)
    return out, Loc(loc.file, loc.line, locs)


def cross_check(config: Config, locations: Locations) -> list[Problem]:
    """Errors that span sections: names, references, time zone, poll floor."""
    problems: list[Problem] = []
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(locations.problem(("timezone",), f"unknown time zone {config.timezone!r}"))
    seen_feeds: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        if feed.key in seen_feeds:
            problems.append(
                locations.problem(
                    ("feeds", i), f"duplicate feed (same as feeds[{seen_feeds[feed.key]}])"
                )
            )
        seen_feeds.setdefault(feed.key, i)
    problems.extend(_poll_floor(config, locations))
    seen_rules: dict[str, int] = {}
    for i, rule in enumerate(config.rules):
        if rule.name in seen_rules:
            first = locations.where(("rules", seen_rules[rule.name], "name"))
            at = f" (first at {first[0]}:{first[1]})" if first else ""
            problems.append(
                locations.problem(("rules", i, "name"), f"duplicate rule name {rule.name!r}{at}")
            )
        seen_rules.setdefault(rule.name, i)
        for j, target in enumerate(rule.notify):
            if target.channel not in config.channels:
                known = ", ".join(sorted(config.channels)) or "none configured"
                problems.append(
                    locations.problem(
                        ("rules", i, "notify", j),
                        f"rule {rule.name!r} notifies unknown channel {target.channel!r} "
                        f"(channels: {known})",
                    )
                )
    return problems


def _check_templates(config: Config, base: Path, locations: Locations) -> list[Problem]:
    """A `templates:` folder: every user template compiles and renders."""
    if not config.templates:
        return []
    folder = (base / config.templates).resolve()
    if not folder.is_dir():
        return [locations.problem(("templates",), f"template folder {folder} does not exist")]
    from newswatch.notify.render import check_templates
    from newswatch.notify.templates import Templates

    return [
        Problem(t.file, t.line, "templates", t.reason) for t in check_templates(Templates(folder))
    ]


def _poll_floor(config: Config, locations: Locations) -> list[Problem]:
    """Feeds on other hosts may not poll more often than ``MIN_REMOTE_INTERVAL``."""
    problems: list[Problem] = []
    by_default: list[str] = []
    for i, feed in enumerate(config.feeds):
        if is_local_feed(feed):
            continue
        if feed.every is not None:
            if feed.every < MIN_REMOTE_INTERVAL:
                problems.append(
                    locations.problem(
                        ("feeds", i, "every"),
                        f"feed {feed_label(feed)!r} would poll every {_human(feed.every)}; "
                        "feeds on other hosts poll at most once a minute (every: 1m or more)",
                    )
                )
        elif config.poll.every < MIN_REMOTE_INTERVAL:
            by_default.append(f"{feed_label(feed)!r} (feeds[{i}])")
    if by_default:
        shown = ", ".join(by_default[:3]) + (
            f" and {len(by_default) - 3} more" if len(by_default) > 3 else ""
        )
        problems.append(
            locations.problem(
                ("poll", "every"),
                f"every {_human(config.poll.every)} is below 1 minute, the floor for feeds on "
                f"other hosts: {shown}; set every: 1m or more (here, or on those feeds)",
            )
        )
    return problems


def _human(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    return f"{seconds:g}s"


def _compile_rules(config: Config, locations: Locations) -> tuple[RuleIndex | None, list[Problem]]:
    """The rule index, or every query problem with its file and line."""
    index, errors = compile_checked(rule_specs(config), config.aliases)
    position = {r.name: k for k, r in enumerate(config.rules)}
    problems: list[Problem] = []
    for err in errors:
        n = position.get(err.rule)
        if err.key == "name":
            continue  # a duplicate rule name: cross_check reported it, with both places
        if err.key == "aliases":
            path: DocPath = ("aliases", err.rule) if err.rule else ("aliases",)
            if err.index is not None:
                path = (*path, err.index)
        elif n is None:
            path = ("rules",)
        elif err.index is not None:
            path = ("rules", n, err.key, err.index)
        else:
            path = ("rules", n, err.key)
        problems.append(locations.problem(path, str(err)))
    return index, problems


def rule_specs(config: Config) -> list[RuleSpec]:
    return [
        RuleSpec(
            name=r.name,
            query=r.query,
            all=r.all,
            any=r.any,
            none=r.none,
            case_sensitive=r.case == "sensitive",
            scope=_scope_keys(r.feeds),
        )
        for r in config.rules
        if r.enabled
    ]


def _scope_keys(scope: tuple[str, ...]) -> tuple[str, ...]:
    """A scope names feeds by name, tag or URL; an article knows its feed by
    key (a hash of the URL), so a URL entry also matches that key."""
    out: list[str] = []
    for entry in scope:
        out.append(entry)
        if re.match(r"^(https?|file)://", entry):
            out.append(feed_key_for(entry))
    return tuple(out)


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration, where it came from, and its compiled rules.

    ``locations`` says where each value was written (for ``lint`` and later
    problems); ``cache`` is what the next ``load_config`` of it may reuse;
    ``hidden`` and ``secret_files`` say which secrets came from where
    (``newswatch.filemodes`` checks who can read them).
    """

    config: Config
    path: Path
    files: tuple[Path, ...]
    index: RuleIndex = field(repr=False, compare=False)
    locations: Locations = field(default_factory=lambda: Locations(None), repr=False, compare=False)
    cache: ConfigCache = field(default_factory=ConfigCache, repr=False, compare=False)
    # Values that came from ${...} (never quoted), and the ${file:...} files read.
    hidden: frozenset[DocPath] = field(default=frozenset(), repr=False, compare=False)
    secret_files: tuple[Path, ...] = field(default=(), repr=False, compare=False)

    def fingerprint(self) -> tuple[tuple[str, float], ...]:
        return _fingerprint(self.files)

    def warnings(self) -> list[Problem]:
        """What ``newswatch check`` warns about (see ``lint``)."""
        return lint(self.config, self.locations)


def _fingerprint(files: Sequence[Path]) -> tuple[tuple[str, float], ...]:
    out = []
    for f in files:
        try:
            out.append((str(f), f.stat().st_mtime))
        except OSError:
            out.append((str(f), -1.0))
    return tuple(out)

"""Loading: YAML -> validated ``Config``, every error with file, line and field.

The YAML is read with a safe loader that remembers the line of every mapping
key and sequence item; ``${VAR}`` secrets are interpolated; rules may come
from folders, files or inline; feeds may come from OPML files. Every problem
becomes one line of a ``ConfigError``: ``file:line: field.path: message``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError

from newswatch.config.models import Config
from newswatch.rules import RuleIndex, RuleSpec, compile_checked

# Where each value came from: path in the merged document -> (file, 1-based line).
Location = tuple[str, int]
_Path = tuple[str | int, ...]


class ConfigError(Exception):
    """One or more problems in the configuration, each naming file, line and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class _Doc:
    """YAML data plus the source location of every node in it."""

    def __init__(self) -> None:
        self.locations: dict[_Path, Location] = {}

    def load(self, path: Path, prefix: _Path = ()) -> Any:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
        try:
            node = yaml.compose(text, Loader=_LineLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            reason = getattr(exc, "problem", None) or str(exc)
            raise ConfigError([f"{where}: invalid YAML: {reason}"]) from exc
        if node is None:
            return None
        return self._build(node, str(path), prefix)

    def _build(self, node: yaml.Node, file: str, at: _Path) -> Any:
        self.locations[at] = (file, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = _LineLoader(" ").construct_object(key_node)
                if key == "<<":  # merge keys: keep it simple, inline the mapping
                    merged = self._build(value_node, file, at)
                    if isinstance(merged, dict):
                        for k, v in merged.items():
                            out.setdefault(k, v)
                    continue
                self.locations[(*at, key)] = (file, key_node.start_mark.line + 1)
                out[key] = self._build(value_node, file, (*at, key))
                self.locations[(*at, key)] = (file, key_node.start_mark.line + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, file, (*at, i)) for i, item in enumerate(node.value)]
        return _LineLoader(" ").construct_object(node)

    def where(self, path: _Path) -> Location | None:
        for n in range(len(path), -1, -1):
            loc = self.locations.get(path[:n])
            if loc is not None:
                return loc
        return None

    def problem(self, path: _Path, message: str) -> str:
        loc = self.where(path)
        field = _dotted(path)
        prefix = f"{loc[0]}:{loc[1]}: " if loc else ""
        return f"{prefix}{field}: {message}" if field else f"{prefix}{message}"


class _LineLoader(yaml.SafeLoader):
    """SafeLoader; a separate class so our tweaks never leak into yaml's."""


def _dotted(path: _Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_ENV_RE = re.compile(r"\$\{([^}]*)\}")


def _interpolate(
    value: Any, path: _Path, env: Mapping[str, str], doc: _Doc, problems: list[str]
) -> Any:
    """Replace ${VAR}, ${VAR:-default} and ${file:/path} in strings.

    Errors name the variable, never a value.
    """
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, doc, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, doc, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(m: re.Match[str]) -> str:
        expr = m.group(1)
        if expr.startswith("file:"):
            file = expr[5:]
            try:
                return Path(file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problems.append(
                    doc.problem(path, f"cannot read secret file {file}: {exc.strerror}")
                )
                return ""
        name, sep, default = expr.partition(":-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(doc.problem(path, f"${{{expr}}} is not a valid variable reference"))
            return ""
        if name in env and env[name] != "":
            return env[name]
        if sep:
            return default
        problems.append(doc.problem(path, f"environment variable {name} is not set"))
        return ""

    return _ENV_RE.sub(replace, value)


def _rule_sources(raw: Any, base: Path) -> tuple[list[Path | int], list[Path]]:
    """`rules:` may be a folder, a file, or a list mixing files and inline rules.

    Returns the sources in order (a file path, or the index of an inline rule
    in the `rules:` list) and the folders read (watched for new files).
    """
    items = raw if isinstance(raw, list) else [raw]
    out: list[Path | int] = []
    folders: list[Path] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            p = (base / item).resolve()
            if p.is_dir():
                folders.append(p)
                out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml")))
            else:
                out.append(p)
        else:
            out.append(i)
    return out, folders


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> LoadedConfig:
    """Read, interpolate, validate; raise ConfigError listing every problem.

    Relative paths in the file (feeds' `path`, `rules`) are resolved against
    the folder of the configuration file, so the daemon can run from anywhere.
    """
    path = Path(path)
    env = os.environ if env is None else env
    doc = _Doc()
    raw = doc.load(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}:1: the configuration must be a mapping of settings"])
    base = path.resolve().parent
    problems: list[str] = []

    rules, aliases, watched = _merge_rules(raw, base, doc, problems)
    feeds = _expand_feeds(raw.get("feeds") or [], base, doc, problems)

    data = {**raw, "rules": rules, "aliases": aliases, "feeds": feeds}
    data = _interpolate(data, (), env, doc, problems)
    if problems:
        raise ConfigError(problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_pydantic_problem(doc, err) for err in exc.errors()]) from None
    problems.extend(_cross_check(config, doc))
    index, rule_problems = _compile_rules(config, doc)
    problems.extend(rule_problems)
    if problems or index is None:
        raise ConfigError(problems)
    return LoadedConfig(config=config, path=path, files=(path, *watched), index=index)


def _expand_feeds(raw: Any, base: Path, doc: _Doc, problems: list[str]) -> Any:
    """Resolve local paths and expand `- opml: FILE` entries into feeds.

    An OPML entry's other settings (every, tags, backfill) apply to each feed
    it lists; the OPML outline's `category` adds tags.
    """
    if not isinstance(raw, list):
        return raw
    old_locs = {p: loc for p, loc in doc.locations.items() if p[:1] == ("feeds",) and len(p) > 1}
    new_locs: dict[_Path, Location] = {}
    out: list[Any] = []
    for i, feed in enumerate(raw):
        entries = [feed]
        if isinstance(feed, dict) and "opml" in feed:
            settings = {k: v for k, v in feed.items() if k != "opml"}
            try:
                entries = [
                    {**settings, **f, "tags": [*settings.get("tags", []), *f.get("tags", [])]}
                    for f in read_opml(base / str(feed["opml"]))
                ]
            except (OSError, ValueError) as exc:
                problems.append(doc.problem(("feeds", i, "opml"), str(exc)))
                entries = []
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                entry["path"] = str((base / entry["path"]).resolve())
            n = len(out)
            out.append(entry)
            for p, loc in old_locs.items():
                if p[1:2] == (i,):
                    new_locs[("feeds", n, *p[2:])] = loc
    for p in old_locs:
        del doc.locations[p]
    doc.locations.update(new_locs)
    return out


def read_opml(path: Path) -> list[dict[str, Any]]:
    """Feeds listed in an OPML file: url, name and tags (from `category`)."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(path.read_bytes())
    except OSError as exc:
        raise OSError(f"cannot read OPML file {path}: {exc.strerror or exc}") from exc
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid OPML: {exc}") from exc
    feeds = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if not url:
            continue
        feed: dict[str, Any] = {"url": url.strip()}
        name = outline.get("title") or outline.get("text")
        if name:
            feed["name"] = name.strip()
        categories = [c.strip().strip("/") for c in (outline.get("category") or "").split(",")]
        feed["tags"] = [c for c in categories if c]
        feeds.append(feed)
    if not feeds:
        raise ValueError(f"{path}: no feeds (outline elements with xmlUrl) found")
    return feeds


def _merge_rules(
    raw: dict[str, Any], base: Path, doc: _Doc, problems: list[str]
) -> tuple[list[Any], dict[str, Any], list[Path]]:
    """Gather inline rules and rule files into one list, keeping each rule's
    file and line under ('rules', n, ...) in ``doc``."""
    aliases: dict[str, Any] = dict(raw.get("aliases") or {})
    if raw.get("rules") is None:
        return [], aliases, []
    inline_locs = {p: loc for p, loc in doc.locations.items() if p[:1] == ("rules",)}
    for p in inline_locs:
        del doc.locations[p]
    sources, watched = _rule_sources(raw["rules"], base)
    rules: list[Any] = []
    for src in sources:
        if isinstance(src, int):  # an inline rule
            n = len(rules)
            rules.append(raw["rules"][src])
            for p, loc in inline_locs.items():
                if p[1:2] == (src,):
                    doc.locations[("rules", n, *p[2:])] = loc
            continue
        watched.append(src)
        sub = _Doc()
        try:
            data = sub.load(src)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        prefix: _Path = ()
        if isinstance(data, dict):  # {aliases: {...}, rules: [...]}
            for name, value in (data.get("aliases") or {}).items():
                aliases[name] = value
                doc.locations[("aliases", name)] = sub.where(("aliases", name)) or (str(src), 1)
            data, prefix = data.get("rules") or [], ("rules",)
        if data is None:
            continue
        if not isinstance(data, list):
            problems.append(sub.problem(prefix, "expected a list of rules"))
            continue
        for i, rule in enumerate(data):
            n = len(rules)
            rules.append(rule)
            for p, loc in sub.locations.items():
                if p[: len(prefix) + 1] == (*prefix, i):
                    doc.locations[("rules", n, *p[len(prefix) + 1 :])] = loc
    return rules, aliases, watched


_CHANNEL_TYPES = (
    "console",
    "email",
    "webhook",
    "slack",
    "discord",
    "telegram",
    "teams",
    "matrix",
    "ntfy",
    "apprise",
)


def _pydantic_problem(doc: _Doc, err: Any) -> str:
    loc: list[str | int] = [
        p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))
    ]
    # A discriminated union puts the tag in the path: channels.NAME.email.smtp
    if len(loc) > 2 and loc[0] == "channels" and loc[2] in _CHANNEL_TYPES:
        del loc[2]
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown setting (check its spelling)"
    elif err["type"] == "union_tag_invalid":
        msg = f"unknown channel type; use one of: {', '.join(_CHANNEL_TYPES)}"
    elif err["type"] == "union_tag_not_found":
        msg = f"a channel needs a 'type' ({', '.join(_CHANNEL_TYPES)})"
    return doc.problem(tuple(loc), msg)


def _cross_check(config: Config, doc: _Doc) -> list[str]:
    """Checks that span sections: names, references, time zone, queries."""
    problems: list[str] = []
    try:
        ZoneInfo(config.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(doc.problem(("timezone",), f"unknown time zone {config.timezone!r}"))
    seen_feeds: dict[str, int] = {}
    for i, feed in enumerate(config.feeds):
        if feed.key in seen_feeds:
            problems.append(
                doc.problem(("feeds", i), f"duplicate feed (same as feeds[{seen_feeds[feed.key]}])")
            )
        seen_feeds.setdefault(feed.key, i)
    seen_rules: dict[str, int] = {}
    for i, rule in enumerate(config.rules):
        if rule.name in seen_rules:
            problems.append(doc.problem(("rules", i, "name"), f"duplicate rule name {rule.name!r}"))
        seen_rules.setdefault(rule.name, i)
        for j, target in enumerate(rule.notify):
            if target.channel not in config.channels:
                known = ", ".join(sorted(config.channels)) or "none configured"
                problems.append(
                    doc.problem(
                        ("rules", i, "notify", j),
                        f"rule {rule.name!r} notifies unknown channel {target.channel!r} "
                        f"(channels: {known})",
                    )
                )
    return problems


def _compile_rules(config: Config, doc: _Doc) -> tuple[RuleIndex | None, list[str]]:
    """The rule index, or every query problem with its file and line."""
    index, errors = compile_checked(rule_specs(config), config.aliases)
    position = {r.name: k for k, r in enumerate(config.rules)}
    problems: list[str] = []
    for err in errors:
        n = position.get(err.rule)
        if err.key == "aliases":
            path: _Path = ("aliases",)
        elif n is None:
            path = ("rules",)
        elif err.index is not None:
            path = ("rules", n, err.key, err.index)
        else:
            path = ("rules", n, err.key)
        loc = doc.where(path)
        prefix = f"{loc[0]}:{loc[1]}: " if loc else ""
        problems.append(f"{prefix}{_dotted(path)}: {err}")
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
            scope=r.feeds,
        )
        for r in config.rules
        if r.enabled
    ]


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration, where it came from, and its compiled rules."""

    config: Config
    path: Path
    files: tuple[Path, ...]
    index: RuleIndex = field(repr=False, compare=False)

    def fingerprint(self) -> tuple[tuple[str, float], ...]:
        return _fingerprint(self.files)


def _fingerprint(files: Sequence[Path]) -> tuple[tuple[str, float], ...]:
    out = []
    for f in files:
        try:
            out.append((str(f), f.stat().st_mtime))
        except OSError:
            out.append((str(f), -1.0))
    return tuple(out)

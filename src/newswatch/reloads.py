"""What a configuration reload changes, decided in pure code.

- ``config_diff(old, new)``: rules added, removed and changed; feeds added
  and removed (by label, never by URL); channels added, removed and changed
  (by name, never their settings); other settings changed (by name).
- ``RESTART_ONLY``: the one list of settings a running daemon cannot
  change. A reload that changes one warns and keeps the old value until
  the next start; everything else takes effect at once.
- ``vanished_rules(old, new)``: a reload that would drop every rule because
  the rule files or folders are empty for a moment (editors that save by
  rename) is refused; ``rules: []`` says "none" explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from newswatch.config import Config, LoadedConfig

# Settings read once at start: the state database, the fetcher's pool and
# limits, and the HTTP listener's socket.
RESTART_ONLY: tuple[str, ...] = (
    "state",
    "poll.concurrency",
    "poll.per_host",
    "poll.timeout",
    "poll.max_bytes",
    "poll.user_agent",
    "http.listen",
)
# Names listed per kind in a reload's log line; the rest are counted.
NAMES_SHOWN = 5

_SECTIONS = ("rules", "feeds", "channels")


def setting(config: Config, dotted: str) -> Any:
    """The value at ``poll.timeout``-style path (None where a section is off)."""
    value: Any = config
    for part in dotted.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def restart_only_changes(old: Config, new: Config) -> list[str]:
    return [name for name in RESTART_ONLY if setting(old, name) != setting(new, name)]


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    rules_added: tuple[str, ...] = ()
    rules_removed: tuple[str, ...] = ()
    rules_changed: tuple[str, ...] = ()
    feeds_added: tuple[str, ...] = ()  # labels
    feeds_removed: tuple[str, ...] = ()
    feeds_changed: tuple[str, ...] = ()  # same source, other settings (every, tags, ...)
    channels_added: tuple[str, ...] = ()
    channels_removed: tuple[str, ...] = ()
    channels_changed: tuple[str, ...] = ()
    settings_changed: tuple[str, ...] = ()  # top-level names (timezone, poll, ...)
    restart_only: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        """One line for the log, e.g. ``rules +a ~b; feeds +2 (X, Y); timezone``."""
        parts = []
        for kind in _SECTIONS:
            bits = []
            for sign, what in (("+", "added"), ("-", "removed"), ("~", "changed")):
                names = getattr(self, f"{kind}_{what}", ())
                if names:
                    bits.append(sign + _names(names))
            if bits:
                parts.append(f"{kind} " + " ".join(bits))
        if self.settings_changed:
            parts.append("settings " + ", ".join(self.settings_changed))
        return "; ".join(parts) or "no changes"


def _names(names: tuple[str, ...]) -> str:
    shown = ",".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{shown} (+{more} more)" if more > 0 else shown


def config_diff(old: Config, new: Config) -> ConfigDiff:
    old_rules = {r.name: r for r in old.rules}
    new_rules = {r.name: r for r in new.rules}
    old_feeds = {f.key: f for f in old.feeds}
    new_feeds = {f.key: f for f in new.feeds}
    settings = [
        name
        for name in type(new).model_fields
        if name not in _SECTIONS and getattr(old, name) != getattr(new, name)
    ]
    return ConfigDiff(
        rules_added=tuple(n for n in new_rules if n not in old_rules),
        rules_removed=tuple(n for n in old_rules if n not in new_rules),
        rules_changed=tuple(
            n for n, r in new_rules.items() if n in old_rules and old_rules[n] != r
        ),
        feeds_added=tuple(f.label for k, f in new_feeds.items() if k not in old_feeds),
        feeds_removed=tuple(f.label for k, f in old_feeds.items() if k not in new_feeds),
        feeds_changed=tuple(
            f.label for k, f in new_feeds.items() if k in old_feeds and old_feeds[k] != f
        ),
        channels_added=tuple(n for n in new.channels if n not in old.channels),
        channels_removed=tuple(n for n in old.channels if n not in new.channels),
        channels_changed=tuple(
            n for n, c in new.channels.items() if n in old.channels and old.channels[n] != c
        ),
        settings_changed=tuple(settings),
        restart_only=tuple(restart_only_changes(old, new)),
    )


def vanished_rules(old: LoadedConfig, new: LoadedConfig) -> str | None:
    """Why a reload to zero rules is refused, or None when it may go ahead.

    Refused when the old configuration had rules and the new one has none
    although it still reads rule files or folders: they are being rewritten
    (an editor saving by rename) or were emptied by mistake. The file
    watcher reloads again when they come back.
    """
    if not old.config.rules or new.config.rules:
        return None
    sources = [str(p) for p in new.files[1:]]
    if not sources:  # `rules: []` or no `rules:` at all: no rules on purpose
        return None
    return (
        f"the rule files ({', '.join(sources[:3])}) hold no rules now; keeping the "
        f"{len(old.config.rules)} rules last loaded (an editor saving by rename? the "
        "file watcher reloads when they are back; to run without rules, write `rules: []`)"
    )

"""Loading: messages a YAML editor understands, the poll floor, rule files and
their lines, and the cache a reload reuses."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from newswatch.config import ConfigCache, ConfigError, load_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return info.value.problems


def only(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    """The one problem of a config made of ``text``, without the file name."""
    cfg = write(tmp_path / "nw.yaml", text)
    [msg] = problems(cfg, env)
    return msg.removeprefix(f"{cfg}:")


# ------------------------------------------------------------------ messages

TRANSLATIONS = [
    ("timezon: UTC\n", "1: timezon: unknown setting 'timezon'; did you mean 'timezone'?"),
    ("poll: {evry: 5m}\n", "1: poll.evry: unknown setting 'evry'; did you mean 'every'?"),
    (
        "channels: {m: {type: email, to: a@b.org, smtp: {host: h, pasword: x}}}\n",
        "1: channels.m.smtp.pasword: unknown setting 'pasword'; did you mean 'password'?",
    ),
    (
        "rules: [{name: r, query: x, notify: [{chanel: c}]}]\nchannels: {c: {type: console}}\n",
        "1: rules[0].notify[0].chanel: unknown setting 'chanel'; did you mean 'channel'?",
    ),
    ("poll: {zzz: 1}\n", "1: poll.zzz: unknown setting 'zzz' (settings here: concurrency, every,"),
    (
        "feeds: [{url: 'https://a.org/', tags: korea}]\n",
        "1: feeds[0].tags: use a list, e.g. [korea]",
    ),
    ("feeds: {url: x}\n", "1: feeds: use a list, e.g. [a, b]"),
    (
        "poll: fast\n",
        "1: poll: use a mapping of settings (key: value lines, or {key: value}), got 'fast'",
    ),
    ("poll: {concurrency: many}\n", "1: poll.concurrency: expected a whole number, got 'many'"),
    ("poll: {concurrency: 2.5}\n", "1: poll.concurrency: expected a whole number, got 2.5"),
    ("poll: {concurrency: 0}\n", "1: poll.concurrency: must be at least 1, got 0"),
    ("poll: {per_host: 1000}\n", "1: poll.per_host: must be at most 256, got 1000"),
    ("poll: {jitter: lots}\n", "1: poll.jitter: expected a number, got 'lots'"),
    (
        "channels: {m: {type: email, to: a@b.org, smtp: {host: h, starttls: maybe}}}\n",
        "1: channels.m.smtp.starttls: expected true or false, got 'maybe'",
    ),
    ("rules: [{name: 7, query: x}]\n", "1: rules[0].name: expected text; put it in quotes: '7'"),
    ("rules: [{name: [a], query: x}]\n", "1: rules[0].name: expected text, got a list"),
    (
        "rules: [{name: r, query: x, case: Sensitive}]\n",
        "1: rules[0].case: must be one of: insensitive, sensitive, got 'Sensitive'",
    ),
    (
        "channels: {c: {type: console, format: xml}}\n",
        "1: channels.c.format: must be one of: text, json, got 'xml'",
    ),
    ("rules: [{query: x}]\n", "1: rules[0].name: 'name' is required here"),
    ("channels: {m: {type: email, to: []}}\n", "1: channels.m.smtp: 'smtp' is required here"),
    (
        "channels: {p: {type: pigeon}}\n",
        "1: channels.p: unknown channel type 'pigeon'; use one of: console,",
    ),
    (
        "channels: {p: {to: x}}\n",
        "1: channels.p: a channel needs a 'type' (console, email, webhook, slack, discord, "
        "telegram, teams, matrix, ntfy, apprise)",
    ),
]


@pytest.mark.parametrize(("text", "expected"), TRANSLATIONS)
def test_pydantic_errors_in_plain_words(tmp_path: Path, text: str, expected: str) -> None:
    cfg = write(tmp_path / "nw.yaml", text)
    msgs = [m.removeprefix(f"{cfg}:") for m in problems(cfg)]
    assert any(m.startswith(expected) for m in msgs), msgs
    assert not any("Input should" in m or "Field required" in m for m in msgs), msgs


def test_secrets_are_never_quoted_back(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        channels:
          m:
            type: email
            to: a@example.org
            smtp: {host: h, port: "${SMTP_PORT}", password: 1234567}
          w: {type: webhook, url: "https://hooks.example.org/x", headers: {Authorization: [s3cr3t]}}
        """,
    )
    msgs = problems(cfg, env={"SMTP_PORT": "hunter2-port"})
    assert [m.removeprefix(f"{cfg}:") for m in msgs] == [
        "5: channels.m.smtp.port: expected a whole number",
        "5: channels.m.smtp.password: expected text",
        "6: channels.w.headers.Authorization: expected text, got a list",
    ]
    assert not any(s in "".join(msgs) for s in ("hunter2", "1234567", "s3cr3t"))


def test_errors_come_in_line_order(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", "timezon: UTC\npoll: {concurency: 1}\nstat: x\n")
    assert [m.split(":")[1] for m in problems(cfg)] == ["1", "2", "3"]


# ------------------------------------------------------------------ the poll floor


def test_remote_feed_may_not_poll_faster_than_a_minute(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "nw.yaml",
        """
        feeds:
          - {url: https://example.org/a, name: Fast, every: 30s}
          - {url: https://example.org/b, every: 1m}
          - {url: "http://127.0.0.1:9/f", every: 100ms}
          - {url: "http://[::1]:9/f", every: 1s}
          - {path: local.xml, every: 1s}
        """,
    )
    assert problems(cfg) == [
        f"{cfg}:2: feeds[0].every: feed 'Fast' would poll every 30s; feeds on other hosts "
        "poll at most once a minute (every: 1m or more)"
    ]


def test_poll_default_below_a_minute_names_the_feeds(tmp_path: Path) -> None:
    feeds = "".join(f"  - url: https://user:pw@example.org/f{i}?token=t\n" for i in range(5))
    cfg = write(tmp_path / "nw.yaml", "poll: {every: 10s}\nfeeds:\n" + feeds)
    [msg] = problems(cfg)
    assert msg.startswith(f"{cfg}:1: poll.every: every 10s is below 1 minute")
    assert "'https://example.org/...' (feeds[0])" in msg and "and 2 more" in msg
    assert "pw" not in msg and "token" not in msg
    cfg.write_text("poll: {every: 10s}\nfeeds:\n  - url: http://localhost:9/f\n")
    load_config(cfg, env={})  # loopback only: fast polling is fine


# ------------------------------------------------------------------ rules gathered


def test_rule_errors_point_into_their_own_files(tmp_path: Path) -> None:
    many = "".join(f"- {{name: a{i}, query: x{i}}}\n" for i in range(500))
    write(tmp_path / "rules" / "a.yaml", many)
    write(
        tmp_path / "rules" / "b.yaml",
        "rules:\n  - {name: b0, query: x}\n  - {name: b1, query: 'x AND'}\n",
    )
    cfg = write(
        tmp_path / "nw.yaml",
        """
        rules:
          - {name: inline, query: 'OR'}
          - rules/
          - {name: last, query: x, notify: [nowhere]}
        """,
    )
    msgs = problems(cfg)
    b = tmp_path / "rules" / "b.yaml"
    assert [m.split(": rule ")[0] for m in msgs] == [
        f"{cfg}:4: rules[503].notify[0]",  # references first, then queries
        f"{cfg}:2: rules[0].query",
        f"{b}:3: rules[502].query",
    ]


def test_duplicate_rule_name_is_reported_once_with_both_places(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "- {name: a, query: y}\n")
    cfg = write(tmp_path / "nw.yaml", "rules:\n  - {name: a, query: x}\n  - more.yaml\n")
    assert problems(cfg) == [
        f"{tmp_path / 'more.yaml'}:1: rules[1].name: duplicate rule name 'a' (first at {cfg}:2)"
    ]


def test_alias_defined_twice_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "aliases:\n  nk: [DPRK]\nrules: []\n")
    cfg = write(tmp_path / "nw.yaml", "aliases:\n  nk: [North Korea]\nrules: [more.yaml]\n")
    assert problems(cfg) == [
        f"{tmp_path / 'more.yaml'}:2: aliases.nk: alias 'nk' is defined twice (first at {cfg}:2)"
    ]


def test_bad_alias_entry_points_at_its_line(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "aliases:\n  ok: [x]\n  nk:\n    - DPRK\n    - 'North AND'\n")
    cfg = write(tmp_path / "nw.yaml", "rules: [more.yaml, {name: r, query: '@nk'}]\n")
    msgs = problems(cfg)
    assert msgs[0].startswith(f"{tmp_path / 'more.yaml'}:5: aliases.nk[1]: alias 'nk' (entry 1)")


def test_rules_file_that_is_not_a_list(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "rules: {name: a}\n")
    cfg = write(tmp_path / "nw.yaml", "rules: [more.yaml]\n")
    assert problems(cfg) == [f"{tmp_path / 'more.yaml'}:1: rules: expected a list of rules"]


def test_misspelt_key_of_a_rules_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "alias: {nk: [DPRK]}\nrule:\n  - {name: a, query: x}\n")
    cfg = write(tmp_path / "nw.yaml", "rules: [more.yaml]\n")
    assert problems(cfg) == [
        f"{tmp_path / 'more.yaml'}:1: alias: unknown setting 'alias'; did you mean 'aliases'?",
        f"{tmp_path / 'more.yaml'}:2: rule: unknown setting 'rule'; did you mean 'rules'?",
    ]


def test_yaml_bomb_in_a_rule_file_is_an_error_of_that_file(tmp_path: Path) -> None:
    lines = ["- &a0 {name: x, query: lol, all: [lol, lol, lol, lol, lol, lol, lol, lol]}"]
    lines += [f"- &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    write(tmp_path / "rules" / "bomb.yaml", "\n".join(lines) + "\n")
    cfg = write(tmp_path / "nw.yaml", "rules: rules/\n")
    [msg] = problems(cfg)
    assert msg.startswith(f"{tmp_path / 'rules' / 'bomb.yaml'}:")
    assert "alias bomb" in msg


def test_opml_tags_that_are_not_a_list(tmp_path: Path) -> None:
    (tmp_path / "subs.opml").write_text(
        '<opml><body><outline xmlUrl="https://a.org/rss"/><outline xmlUrl="https://b.org/rss"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    cfg = write(tmp_path / "nw.yaml", "feeds:\n  - opml: subs.opml\n    tags: korea\n")
    assert [m.removeprefix(f"{cfg}:") for m in problems(cfg)] == [
        "3: feeds[0].tags: use a list, e.g. [korea]",
        "3: feeds[1].tags: use a list, e.g. [korea]",
    ]


# ------------------------------------------------------------------ the cache


def touch(path: Path, text: str) -> None:
    """Rewrite ``path`` and move its mtime on, as an editor's save would."""
    stamp = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stamp + 10**9, stamp + 10**9))


def test_reload_parses_only_the_files_that_changed(tmp_path: Path) -> None:
    for n in range(5):
        write(tmp_path / "rules" / f"r{n}.yaml", f"- {{name: r{n}, query: x{n}}}\n")
    cfg = write(
        tmp_path / "nw.yaml",
        "feeds: [{path: f.xml}]\naliases: {a: [x]}\nrules: rules/\n",
    )
    cache = ConfigCache()
    first = load_config(cfg, env={}, cache=cache)
    assert (cache.hits, cache.misses) == (0, 6)
    touch(tmp_path / "rules" / "r3.yaml", "- {name: r3, query: changed}\n")
    second = load_config(cfg, env={}, cache=first.cache)
    assert (cache.hits, cache.misses) == (5, 7)
    assert second.config.rules[3].query == "changed"
    # What the cache holds was not changed by using it: the same result again.
    third = load_config(cfg, env={}, cache=cache)
    assert third.config == second.config
    assert third.config.feeds[0].path == str((tmp_path / "f.xml").resolve())


def test_cache_remembers_errors_and_forgets_removed_files(tmp_path: Path) -> None:
    bad = write(tmp_path / "rules" / "bad.yaml", "- {name: a, query: [\n")
    cfg = write(tmp_path / "nw.yaml", "rules: rules/\n")
    cache = ConfigCache()
    for _ in range(2):
        with pytest.raises(ConfigError) as info:
            load_config(cfg, env={}, cache=cache)
        assert info.value.problems[0].startswith(f"{bad}:")
    assert cache.misses == 2  # main file and bad.yaml, parsed once each
    bad.unlink()
    load_config(cfg, env={}, cache=cache)
    assert bad not in cache._files


def test_cached_file_with_new_env_is_interpolated_again(tmp_path: Path) -> None:
    cfg = write(tmp_path / "nw.yaml", "channels: {w: {type: webhook, url: '${HOOK}'}}\n")
    cache = ConfigCache()
    one = load_config(cfg, env={"HOOK": "https://a.example.org/1"}, cache=cache)
    two = load_config(cfg, env={"HOOK": "https://b.example.org/2"}, cache=cache)
    urls = [c.config.channels["w"].url.get_secret_value() for c in (one, two)]  # type: ignore[union-attr]
    assert urls == ["https://a.example.org/1", "https://b.example.org/2"]
    assert cache.hits == 1


def test_a_cached_main_file_gives_the_same_lines_again(tmp_path: Path) -> None:
    write(tmp_path / "more.yaml", "- {name: f0, query: x}\n- {name: f1, query: y}\n")
    cfg = write(
        tmp_path / "nw.yaml",
        """
        rules:
          - {name: a, query: x}
          - more.yaml
          - {name: b, query: x, notify: [nowhere]}
        """,
    )
    cache = ConfigCache()
    for _ in range(3):  # merging must not change the parsed tree the cache keeps
        with pytest.raises(ConfigError) as info:
            load_config(cfg, env={}, cache=cache)
        assert [p.split(": rule 'b'")[0] for p in info.value.problems] == [
            f"{cfg}:4: rules[3].notify[0]"
        ]
    assert cache.hits == 4

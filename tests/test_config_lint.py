"""lint: what loads but silently breaks alerting, as a table of configurations."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from newswatch.config import Config, FeedConfig, Locations, Problem, lint, load_config
from newswatch.config.lint import address_problem, feed_label, is_local_feed

CONSOLE = {"c": {"type": "console"}}
FEED = {"url": "https://example.org/rss", "name": "Example", "tags": ["korea"]}
UNNAMED = {"url": "https://example.org/unnamed"}


def config(**given: Any) -> Config:
    data: dict[str, Any] = {"feeds": [FEED, UNNAMED], "channels": CONSOLE}
    data.update(given)
    return Config.model_validate(data)


def rule(**given: Any) -> dict[str, Any]:
    return {"name": "r", "notify": ["c"], **given}


def warnings(cfg: Config) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in lint(cfg, Locations(None))]


# (rules, expected warnings as (path, a part of the message)); [] means none.
RULE_CASES: list[tuple[str, list[dict[str, Any]], list[tuple[str, str]]]] = [
    ("fine", [rule(query='Russia AND "North Korea"')], []),
    ("upper-case OR", [rule(query="Russia OR China")], []),
    ("lower-case or", [rule(query="russia or china")], [("rules[0].query", "did you mean OR?")]),
    ("lower-case and", [rule(query="a and (b)")], [("rules[0].query", "did you mean AND?")]),
    ("mixed-case Not", [rule(query="a Not b")], [("rules[0].query", "did you mean NOT?")]),
    ("leading not", [rule(query="not sports")], [("rules[0].query", "did you mean NOT?")]),
    ("or at the end is a word", [rule(query="either or")], []),
    ("and at the start is a word", [rule(query="and more")], []),
    ("or in a phrase", [rule(query='"rock or roll"')], []),
    ("prefix or*", [rule(query="a or* b")], []),
    ("or in an any entry", [rule(any=["Russia or China"])], [("rules[0].any[0]", "one phrase")]),
    ("notifies nobody", [{"name": "r", "query": "x"}], [("rules[0].name", "notifies no channel")]),
    ("all and none", [rule(all=["THAAD"], none=["thaad"])], [("rules[0].name", "can never match")]),
    ("a -a", [rule(query="a -a")], [("rules[0].name", "can never match")]),
    ("accents fold", [rule(query="Pyŏngyang -pyongyang")], [("rules[0].name", "never match")]),
    (
        "phrase and word",
        [rule(query='"north korea" NOT "North  Korea"')],
        [("rules[0].name", "never")],
    ),
    ("NOT of an OR", [rule(query="a NOT (b OR a)")], [("rules[0].name", "can never match")]),
    ("NEAR side", [rule(query="a NEAR/3 b -b")], [("rules[0].name", "can never match")]),
    ("field inside default", [rule(query="title:x -x")], [("rules[0].name", "can never match")]),
    ("default is wider than title", [rule(query="x -title:x")], []),
    ("other field", [rule(query="title:x -summary:x")], []),
    ("case-sensitive differs", [rule(query="Apple -apple", case="sensitive")], []),
    ("prefix differs", [rule(query="korea -korea*")], []),
    ("or of both is fine", [rule(query="(a OR b) -a")], []),
    ("through an alias", [rule(query="@one -dprk")], [("rules[0].name", "can never match")]),
    ("an alias of two is an OR", [rule(query="@nk -DPRK")], []),
    ("scope by tag", [rule(query="x", feeds=["tag:korea"])], []),
    ("scope by name, any case", [rule(query="x", feeds=["example"])], []),
    ("scope by url", [rule(query="x", feeds=["https://example.org/unnamed"])], []),
    (
        "scope typo",
        [rule(query="x", feeds=["tag:koera"])],
        [
            (
                "rules[0].feeds[0]",
                "matches no feed (feed names, URLs or tag:NAME); did you mean 'tag:korea'?",
            )
        ],
    ),
    (
        "scope nowhere",
        [rule(query="x", feeds=["nowhere"])],
        [("rules[0].feeds[0]", "matches no feed")],
    ),
    ("bad query is compile's business", [rule(query="a AND")], []),
]


@pytest.mark.parametrize(
    ("rules", "expected"), [pytest.param(r, e, id=name) for name, r, e in RULE_CASES]
)
def test_rule_warnings(rules: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    found = warnings(config(rules=rules, aliases={"nk": ["DPRK", "North Korea"], "one": ["DPRK"]}))
    assert len(found) == len(expected), found
    for (path, message), (want_path, want) in zip(found, expected, strict=True):
        assert path == want_path
        assert want in message, message


def test_lower_case_operator_points_a_caret_at_it() -> None:
    [(_, message)] = warnings(config(rules=[rule(query="Russia or China")]))
    first, line, caret = message.splitlines()
    assert first == "rule 'r' (query): lower-case 'or' is searched as a word; did you mean OR?"
    assert line.strip() == "Russia or China"
    assert line[caret.index("^") :].startswith("or")


FEED_CASES: list[tuple[str, list[dict[str, Any]], list[tuple[str, str]]]] = [
    ("distinct", [FEED, {"url": "https://example.org/other"}], []),
    (
        "same name",
        [FEED, {"url": "https://b.org/", "name": "EXAMPLE"}],
        [("feeds[1].name", "two feeds are named")],
    ),
    (
        "http and https",
        [FEED, {"url": "http://example.org/rss"}],
        [("feeds[1].url", "one feed polled twice")],
    ),
    (
        "host case, slash, port",
        [FEED, {"url": "https://EXAMPLE.org:443/rss/"}],
        [("feeds[1].url", "same URL")],
    ),
    ("other port", [FEED, {"url": "https://example.org:8443/rss"}], []),
    ("other query", [FEED, {"url": "https://example.org/rss?page=2"}], []),
]


@pytest.mark.parametrize(
    ("feeds", "expected"), [pytest.param(f, e, id=name) for name, f, e in FEED_CASES]
)
def test_feed_warnings(feeds: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    found = warnings(config(feeds=feeds, rules=[rule(query="x")]))
    assert [(p, w in m) for (p, m), (_, w) in zip(found, expected, strict=False)] == [
        (p, True) for p, _ in expected
    ]
    assert len(found) == len(expected), found


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("desk@example.org", None),
        ("Desk <desk@example.org>", None),
        ("newswatch@localhost", None),
        ("desk@", "is not an email address"),
        ("desk.example.org", "is not an email address"),
        ("desk@example..org", "is not an email address"),
        ("a@b.org, c@d.org", "holds 2 addresses"),
        ("", "is not an email address"),
    ],
)
def test_address_problem(address: str, problem: str | None) -> None:
    found = address_problem(address)
    assert found is None if problem is None else problem in (found or "")


def test_email_channel_addresses_are_checked() -> None:
    mail = {
        "type": "email",
        "to": ["ok@example.org", "desk@"],
        "from": "nobody",
        "smtp": {"host": "h"},
    }
    found = warnings(config(channels={**CONSOLE, "m": mail}, rules=[rule(query="x")]))
    assert [p for p, _ in found] == ["channels.m.to[1]", "channels.m.from"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            {"feeds": [], "channels": {}},
            ["the configuration is empty: no feeds, rules or channels"],
        ),
        ({"feeds": []}, ["no feeds: nothing will be polled", "no rules: nothing will alert"]),
        ({}, ["no rules: nothing will alert"]),
    ],
)
def test_empty_configuration(given: dict[str, Any], expected: list[str]) -> None:
    assert [m for _, m in warnings(config(**given))] == expected


@pytest.mark.parametrize(
    ("feed", "local"),
    [
        ({"path": "/srv/feed.xml"}, True),
        ({"url": "file:///srv/feed.xml"}, True),
        ({"url": "http://127.0.0.1:8080/f"}, True),
        ({"url": "http://127.8.9.10/f"}, True),
        ({"url": "http://[::1]:8080/f"}, True),
        ({"url": "http://[::ffff:127.0.0.1]/f"}, True),
        ({"url": "http://localhost/f"}, True),
        ({"url": "http://feeds.localhost./f"}, True),
        ({"url": "http://LocalHost/f"}, True),
        ({"url": "https://example.org/f"}, False),
        ({"url": "http://10.0.0.1/f"}, False),  # private, but another machine
        ({"url": "http://localhost.example.org/f"}, False),
        ({"url": "http://128.0.0.1/f"}, False),
    ],
)
def test_is_local_feed(feed: dict[str, str], local: bool) -> None:
    assert is_local_feed(FeedConfig.model_validate(feed)) is local


def test_feed_label_never_shows_credentials() -> None:
    feed = FeedConfig.model_validate({"url": "https://user:pw@example.org/rss?token=abc"})
    assert feed_label(feed) == "https://example.org/..."
    assert feed_label(FeedConfig.model_validate({**FEED})) == "Example"


def test_warnings_name_file_and_line_in_line_order(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "- {name: a, query: 'x or y', notify: [c]}\n\n- {name: b, query: z}\n", encoding="utf-8"
    )
    cfg = tmp_path / "nw.yaml"
    cfg.write_text(
        textwrap.dedent(
            """
            feeds:
              - {url: https://example.org/rss, name: X}
              - {url: https://example.org/other, name: x}
            channels: {c: {type: console}}
            rules: [rules.yaml]
            """
        ).lstrip(),
        encoding="utf-8",
    )
    found = load_config(cfg, env={}).warnings()
    assert [(Path(p.file).name, p.line, p.path, p.severity) for p in found] == [
        ("nw.yaml", 3, "feeds[1].name", "warning"),
        ("rules.yaml", 1, "rules[0].query", "warning"),
        ("rules.yaml", 3, "rules[1].name", "warning"),
    ]
    assert str(found[0]).startswith(f"{cfg}:3: warning: feeds[1].name: two feeds are named 'x'")


def test_lint_is_pure() -> None:
    cfg = config(rules=[rule(query="a or b"), {"name": "q", "query": "x -x"}])
    first = lint(cfg, Locations(None))
    assert first == lint(cfg, Locations(None))
    assert all(isinstance(p, Problem) and p.severity == "warning" for p in first)


def test_the_example_configuration_has_no_warnings() -> None:
    repo = Path(__file__).resolve().parents[1]
    assert load_config(repo / "config" / "newswatch.yaml", env={}).warnings() == []
    assert yaml.safe_load((repo / "config" / "newswatch.yaml").read_text()) is not None

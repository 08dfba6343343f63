"""Bounded YAML: bombs stop at once with file:line, syntax errors show a caret.

Every case runs on both parsers PyYAML may give us: libyaml's (C) and its
own pure-Python one, since a machine without libyaml falls back to it.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from newswatch.config import ConfigError, Locations, yamlsafe
from newswatch.config.yamlsafe import (
    ALIAS_NODE_BUDGET,
    MAX_DEPTH,
    MAX_DOCUMENT_NODES,
    TAB_HINT,
    Parsed,
    load_file,
    parse_yaml,
)

LOADERS = [pytest.param(yaml.SafeLoader, id="python")]
if getattr(yaml, "CSafeLoader", None) is not None:
    LOADERS.append(pytest.param(yaml.CSafeLoader, id="libyaml"))


@pytest.fixture(params=LOADERS, autouse=True)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsafe, "_Loader", request.param)


def parse(text: str) -> Parsed:
    return parse_yaml(text, "f.yaml")


def error(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text)
    [problem] = info.value.problems
    return problem


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """YAML's billion laughs: each level lists the previous one ``width`` times."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ values and lines


def test_values_as_safe_load_gives_them() -> None:
    text = "a: 1\nb: [x, 'y', 2024-01-01, null, true, 1.5, '10']\nc: {d: e}\n"
    assert parse(text).data == yaml.safe_load(text)
    assert parse(text).data["b"][2] == date(2024, 1, 1)


def test_lines_of_keys_and_items() -> None:
    p = parse("feeds:\n  - url: a\n    every: 5m\n  -\n    url: b\nrules: []\n")
    where = Locations(p.loc).where
    assert where(("feeds",)) == ("f.yaml", 1)
    assert where(("feeds", 0, "every")) == ("f.yaml", 3)
    assert where(("feeds", 1)) == ("f.yaml", 5)
    assert where(("feeds", 1, "url")) == ("f.yaml", 5)
    assert where(("feeds", 1, "nope", 3)) == ("f.yaml", 5)  # deepest known ancestor
    assert where(("rules",)) == ("f.yaml", 6)


def test_empty_and_comment_only_files_are_empty() -> None:
    assert parse("") == Parsed(None, None)
    assert parse("# nothing\n").data is None


def test_anchor_alias_and_merge_key() -> None:
    text = (
        "defaults: &d {every: 10m, tags: [x]}\n"
        "feeds:\n"
        "  - <<: *d\n"
        "    url: u\n"
        "    every: 5m\n"
        "  - *d\n"
        "  - <<: [{a: 1}, {a: 2, b: 2}]\n"
    )
    p = parse(text)
    assert p.data == yaml.safe_load(text)
    assert p.data["feeds"][0] == {"url": "u", "every": "5m", "tags": ["x"]}  # written wins
    assert p.data["feeds"][2] == {"a": 1, "b": 2}  # earlier merged mapping wins
    where = Locations(p.loc).where
    assert where(("feeds", 0, "tags")) == ("f.yaml", 3)  # merged: the `<<` line
    assert where(("feeds", 0, "every")) == ("f.yaml", 5)
    assert where(("feeds", 1)) == ("f.yaml", 6)  # an alias: its own line


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", "f.yaml:3: duplicate key 'a' (first at line 1)"),
        ("a: *nope\n", "f.yaml:1: unknown alias *nope (no &nope anchor before it)"),
        ("a: !!set {x}\n", "f.yaml:1: YAML tag !!set is not supported here; use a plain list"),
        ("a: !custom x\n", "f.yaml:1: YAML tag !custom is not supported here"),
        ("? [a]\n: 1\n", "f.yaml:1: a key must be plain text, not a list or mapping"),
        ("a: &k [1]\n*k : 2\n", "f.yaml:2: a key must be plain text, not a list or mapping"),
        ("a: 1\n---\nb: 2\n", "f.yaml:2: a second YAML document (---); put everything in one"),
        ("a: !!int x1\n", "f.yaml:1: 'x1' is not a valid !!int; put it in quotes to make it text"),
        ("a: " + "9" * 5000 + "\n", "f.yaml:1: '" + "9" * 40 + "...' is not a valid !!int"),
        (
            "x: 1\n<<: [1]\n",
            "f.yaml:2: '<<' merges a mapping (or a list of mappings) into this one",
        ),
    ],
)
def test_what_is_refused(text: str, message: str) -> None:
    assert error(text).startswith(message)


# ------------------------------------------------------------------ bombs


# Expanded, the bomb is 10**9 values: minutes and gigabytes. Refused, it is
# microseconds; the tight timeout turns a regression into a failure, not a hang.
@pytest.mark.timeout(10)
def test_alias_bomb_stops_at_once_with_file_and_line() -> None:
    msg = error(alias_bomb())
    assert msg.startswith(f"f.yaml:4: aliases expand to more than {ALIAS_NODE_BUDGET:,} values")
    assert "alias bomb" in msg


def test_aliases_within_budget_are_fine() -> None:
    p = parse(alias_bomb(levels=3))  # 10 + 100 + 1,000 values through aliases
    assert len(p.data["a2"]) == 10
    assert p.data["a2"][0] is p.data["a1"]  # shared, not copied


def test_alias_budget_grows_with_what_the_file_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsafe, "ALIAS_NODE_BUDGET", 100)
    # 200 rules each reusing one anchor: 400 values through aliases, more
    # than the floor but fewer than the file writes itself, so no bomb.
    rules = "".join(f"- {{name: r{i}, query: q{i}, notify: *n}}\n" for i in range(200))
    p = parse("- {name: first, query: q, notify: &n [console]}\n" + rules)
    assert len(p.data) == 201
    msg = error("n: &n [a, b, c]\nx: [" + ", ".join(["*n"] * 40) + "]\n")
    assert msg.startswith("f.yaml:2: aliases expand to more than 100 values (at *n)")


@pytest.mark.timeout(10)
def test_deep_nesting_is_an_error_not_a_recursion_error() -> None:
    msg = error("x: " + "[" * 10_000 + "]" * 10_000 + "\n")
    assert msg.startswith("f.yaml:1:")
    assert f"nested more than {MAX_DEPTH} levels deep" in msg


def test_nesting_just_within_the_limit_loads() -> None:
    depth = MAX_DEPTH - 1  # the document's mapping is one level
    p = parse("x: " + "[" * depth + "1" + "]" * depth + "\n")
    value = p.data["x"]
    for _ in range(depth - 1):
        value = value[0]
    assert value == [1]


def test_document_node_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsafe, "MAX_DOCUMENT_NODES", 1000)
    msg = error("[" + ", ".join(["1"] * 2000) + "]\n")
    assert msg.startswith("f.yaml:1: more than 1,000 values")
    assert MAX_DOCUMENT_NODES == 1_000_000  # the real cap, named


def test_file_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsafe, "MAX_FILE_BYTES", 1024 * 1024)
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.problems == [f"{path}: file is larger than 1 MiB; not read"]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"a: 1\nname: Caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_file(path)
    assert info.value.problems[0].startswith(f"{path}:2: not valid UTF-8")


# ------------------------------------------------------------------ syntax errors


def test_syntax_error_shows_the_line_and_a_caret() -> None:
    msg = error("feeds:\n  - url: https://a\n    name: [unclosed\n")
    head, line, caret = msg.splitlines()
    assert head.startswith("f.yaml:3: invalid YAML:")
    assert line == "        name: [unclosed"
    assert caret.index("^") == len(line)  # after the last character: ']' is missing


def test_mapping_value_in_plain_text_gets_a_hint() -> None:
    msg = error("rules:\n  - name: a\n    query: Seoul: the capital\n")
    head, line, caret = msg.splitlines()
    assert head.startswith("f.yaml:3: invalid YAML: mapping values are not allowed")
    assert "needs quotes" in head
    assert line[caret.index("^")] == ":"


def test_tab_indentation_gets_a_hint() -> None:
    msg = error("poll:\n\tevery: 10m\n")
    assert msg.startswith("f.yaml:2: invalid YAML:")
    assert TAB_HINT in msg
    assert "\t" not in msg  # shown as spaces, so the caret lines up


def test_wide_characters_before_the_error_keep_the_caret_aligned() -> None:
    msg = error("이름: 러시아: 북한\n")
    _, line, caret = msg.splitlines()
    assert line == "    이름: 러시아: 북한"
    # The second ':' is the 7th character, but 12 columns in: 이름 and 러시아
    # are wide, 2 columns each (and the snippet is indented by 4).
    assert caret.index("^") == 4 + len("이름") * 2 + len(": ") + len("러시아") * 2


def test_long_lines_are_cut_around_the_caret() -> None:
    msg = error("x: " + "a" * 300 + ": b\n")
    _, line, caret = msg.splitlines()
    assert len(line) < 120
    assert line.strip().startswith("...")
    assert line[caret.index("^")] == ":"

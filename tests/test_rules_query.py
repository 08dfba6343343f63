"""The query language: parsing, precedence, fields, list forms, aliases, errors."""

from __future__ import annotations

import pickle

import pytest

from newswatch.rules import (
    Alias,
    And,
    Field,
    Near,
    Not,
    Or,
    Phrase,
    QueryError,
    Regex,
    RuleSpec,
    Word,
    check_rules,
    compile_rules,
    describe,
    parse_query,
    spec_node,
)
from newswatch.rules.query import parse_entry

W = Word


def test_words_are_anded_and_precedence_is_not_and_or() -> None:
    assert parse_query("a b OR c -d") == Or((And((W("a"), W("b"))), And((W("c"), Not(W("d"))))))
    assert parse_query("NOT a OR b") == Or((Not(W("a")), W("b")))
    assert parse_query("a AND b OR c AND d") == parse_query("(a b) OR (c d)")
    assert parse_query("a OR b c") == Or((W("a"), And((W("b"), W("c")))))
    assert parse_query("a NOT b") == And((W("a"), Not(W("b"))))
    assert parse_query("NOT NOT a") == Not(Not(W("a")))


def test_lower_case_operators_are_words() -> None:
    assert parse_query("war and peace or not") == And(
        (W("war"), W("and"), W("peace"), W("or"), W("not"))
    )


def test_phrases_prefixes_regexes_aliases() -> None:
    assert parse_query('Russia AND "North Korea"') == And((W("Russia"), Phrase("North Korea")))
    assert parse_query("russ*") == W("russ", prefix=True)
    assert parse_query(r"/ru\/s+/i") == Regex(r"ru\/s+", ignore_case=True)
    assert parse_query("@north_korea") == Alias("north_korea")
    # curly quotes from word processors delimit phrases too
    assert parse_query("“North Korea”") == Phrase("North Korea")


def test_near_binds_tighter_than_and() -> None:
    assert parse_query('Russia NEAR/5 "North Korea" sanctions') == And(
        (Near(W("Russia"), Phrase("North Korea"), 5), W("sanctions"))
    )
    assert parse_query("(a OR b) NEAR/2 c") == Near(Or((W("a"), W("b"))), W("c"), 2)
    assert parse_query("NOT a NEAR/1 b") == Not(Near(W("a"), W("b"), 1))


def test_fields_on_terms_and_groups() -> None:
    assert parse_query('title:(THAAD OR "missile defense")') == Field(
        "title", Or((W("THAAD"), Phrase("missile defense")))
    )
    assert parse_query("Title:x source:@feeds") == And(
        (Field("title", W("x")), Field("source", Alias("feeds")))
    )
    # a URL is a word, not an unknown field
    assert parse_query("url:https://example.org/a") == Field("url", W("https://example.org/a"))


@pytest.mark.parametrize(
    "query",
    [
        'Russia AND "North Korea"',
        "a OR b AND NOT (c OR d)",
        'title:(THAAD OR "missile defense") -sports',
        "russ* NEAR/3 (korea OR 北韩)",
        r"/\bLavrov\b/i AND @nk",
        "NOT (a NEAR/0 b)",
    ],
)
def test_describe_round_trips(query: str) -> None:
    node = parse_query(query)
    assert parse_query(describe(node)) == node


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("()", "empty group ()", 0),
        ("a AND ()", "empty group ()", 6),
        ("(a OR b", "unbalanced '(': no ')' after it", 0),
        ("a OR b)", "unbalanced ')': no '(' before it", 6),
        ('Russia "North Korea', 'unbalanced quote: no closing "', 7),
        ("Russia AND", "AND needs a term after it", 7),
        ("OR Russia", "OR needs a term before it", 0),
        ("a OR OR b", "OR needs a term after it", 2),
        ("a NOT", "NOT needs a term after it", 2),
        ("a NEAR b", "NEAR needs a distance, e.g. NEAR/5", 2),
        ("a NEAR/x b", "NEAR needs a distance, e.g. NEAR/5", 2),
        ("a NEAR/3", "NEAR/3 needs a word or phrase after it", 2),
        ("a NEAR/3 b NEAR/3 c", "NEAR cannot be chained; use AND between two NEARs", 11),
        ("(a b) NEAR/3 c", "NEAR/3 works on words, phrases and OR-groups of them", 6),
        ("ru*", "prefix needs at least 3 letters before '*'", 0),
        ("a*b", "'*' can only end a word (prefix*)", 1),
        ("x /ru(/", "invalid regex: missing ), unterminated subpattern", 5),
        ("/abc", "unterminated regex: no closing /", 0),
        ("/abc/x", "unknown regex flag 'x' (only /i is supported)", 5),
        ("titel:x", "unknown field 'titel'", 0),
        ("title: x", "nothing after 'title:'", 0),
        ("a - b", "'-' must be attached to what it excludes, e.g. -sports", 2),
        ("@", "alias name expected after '@'", 0),
        ('""', "empty phrase", 0),
        ("a & b", "'&' has no letters or digits to match", 2),
    ],
)
def test_errors_have_a_message_and_a_caret(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(query)
    err = info.value
    assert err.message.startswith(message)
    assert err.position == position
    lines = str(err).splitlines()
    assert lines[1] == f"    {query}"
    assert lines[2] == "    " + " " * position + "^"


def test_error_names_the_rule_and_the_list_item() -> None:
    errors = check_rules(
        [
            RuleSpec("good", "Russia"),
            RuleSpec("bad", "Russia AND"),
            RuleSpec("bad-list", all=("Russia", "(x")),
            RuleSpec("empty"),
        ]
    )
    assert [(e.rule, e.key, e.index) for e in errors] == [
        ("bad", "query", None),
        ("bad-list", "all", 1),
        ("empty", "query", None),
    ]
    assert str(errors[0]) == ("rule 'bad': AND needs a term after it\n    Russia AND\n           ^")
    assert str(errors[1]).startswith("rule 'bad-list' (all[1]): unbalanced '('")
    assert errors[2].message == "rule has nothing to match: give query, all, any or none"
    with pytest.raises(QueryError, match="AND needs a term after it"):
        compile_rules([RuleSpec("good", "Russia"), RuleSpec("bad", "Russia AND")])


def test_caret_is_under_the_right_line_and_wide_characters() -> None:
    with pytest.raises(QueryError) as info:
        parse_query("북한 AND\n(Russia")
    assert str(info.value).splitlines()[1:] == ["    (Russia", "    ^"]
    with pytest.raises(QueryError) as info:
        parse_query("북한 ()")
    assert str(info.value).splitlines()[2] == "    " + " " * 5 + "^"  # 북한 is 4 columns wide


def test_query_error_pickles() -> None:
    err = QueryError("boom", rule="r", key="any", index=2, text="x y", position=2)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.rule, copy.key, copy.index, copy.text, copy.position) == ("r", "any", 2, "x y", 2)
    assert str(copy) == str(err)


def test_duplicate_rule_names_are_an_error() -> None:
    errors = check_rules([RuleSpec("a", "x"), RuleSpec("a", "y")])
    assert [(e.rule, e.key, e.message) for e in errors] == [("a", "name", "duplicate rule name")]


def test_list_forms_give_the_same_ast_as_a_query() -> None:
    spec = RuleSpec("r", all=("Russia", "North Korea"), none=("sports",))
    assert spec_node(spec) == parse_query('Russia AND "North Korea" NOT sports')
    spec = RuleSpec("r", query="Russia", any=("THAAD", "sanctions OR embargo"), none=("a", "b"))
    assert spec_node(spec) == parse_query("Russia (THAAD OR sanctions OR embargo) NOT a NOT b")
    assert spec_node(RuleSpec("r", any=('"Kim Jong Un"',))) == Phrase("Kim Jong Un")


def test_entry_rule_plain_words_are_a_phrase_anything_else_a_query() -> None:
    assert parse_entry("North Korea") == Phrase("North Korea")
    assert parse_entry("DPRK") == W("DPRK")
    assert parse_entry("Kim Jong-un") == Phrase("Kim Jong-un")
    assert parse_entry("Kim OR Jong") == Or((W("Kim"), W("Jong")))
    assert parse_entry("pyong*") == W("pyong", prefix=True)
    assert parse_entry("title:THAAD") == Field("title", W("THAAD"))


def test_aliases_expand_and_their_errors_are_reported() -> None:
    aliases = {"nk": ["North Korea", "DPRK", "@pyongyang"], "pyongyang": ["Pyongyang", "평양"]}
    assert check_rules([RuleSpec("r", "@nk AND Russia")], aliases) == []
    errors = check_rules([RuleSpec("r", "@nkk AND Russia")], aliases)
    assert errors[0].message == "unknown alias @nkk; did you mean @nk?"
    assert errors[0].position == 0
    bad = {"a": ["@b"], "b": ["x", "@a"], "c": ["(oops"], "d": []}
    errors = check_rules([RuleSpec("r", "Russia @c")], bad)
    by_alias = {(e.rule, e.key): e for e in errors}
    assert by_alias[("b", "aliases")].message == "alias cycle: @a -> @b -> @a"
    assert by_alias[("c", "aliases")].message == "unbalanced '(': no ')' after it"
    assert by_alias[("d", "aliases")].message == "an alias needs a list of entries"
    assert str(by_alias[("c", "aliases")]).startswith("alias 'c' (entry 0): unbalanced")
    rule_error = by_alias[("r", "query")]
    assert rule_error.message.startswith("alias @c is invalid")
    assert rule_error.position == 7


def test_near_with_an_alias_that_is_not_words() -> None:
    errors = check_rules([RuleSpec("r", "x NEAR/2 @bad")], {"bad": ["a AND b"]})
    assert errors[0].message == "NEAR/2 works on words, phrases and OR-groups of them"
    assert errors[0].position == 2

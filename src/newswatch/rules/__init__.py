"""Watch rules: the query language and the matching engine.

    index = compile_rules([RuleSpec("rnk", query='Russia AND "North Korea"')])
    for match in index.match(article): ...

See docs/rules.md for the language.
"""

from newswatch.rules.errors import QueryError
from newswatch.rules.explain import Verdict
from newswatch.rules.index import (
    IndexStats,
    RuleIndex,
    check_rules,
    compile_checked,
    compile_rules,
)
from newswatch.rules.query import (
    Alias,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Regex,
    Word,
    describe,
    parse_query,
)
from newswatch.rules.spec import RuleSpec, spec_node

__all__ = [
    "Alias",
    "And",
    "Field",
    "IndexStats",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "QueryError",
    "Regex",
    "RuleIndex",
    "RuleSpec",
    "Verdict",
    "Word",
    "check_rules",
    "compile_checked",
    "compile_rules",
    "describe",
    "parse_query",
    "spec_node",
]

"""Rule specs and aliases: from what the user wrote to one expanded AST.

A rule is ``query`` AND every ``all`` entry AND any ``any`` entry AND NOT
each ``none`` entry; list entries follow ``parse_entry`` (plain words are a
word or phrase, anything else a query). Aliases (``@name``) are replaced by
an OR of their entries, which may use other aliases; cycles are errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newswatch.rules.errors import QueryError
from newswatch.rules.query import (
    Alias,
    And,
    Field,
    Near,
    Node,
    Not,
    Or,
    and_,
    is_positional,
    or_,
    parse_entry,
    parse_query,
)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One watch rule as configured. ``scope``: feed names, feed keys or ``tag:NAME``."""

    name: str
    query: str | None = None
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    case_sensitive: bool = False
    scope: tuple[str, ...] = ()


Part = tuple[Node, str, int | None, str]  # node, key, list index, source text


def _parse(spec: RuleSpec, key: str, index: int | None, text: str) -> Node:
    try:
        return parse_query(text) if key == "query" else parse_entry(text)
    except QueryError as e:
        raise e.with_context(rule=spec.name, key=key, index=index) from None


def spec_parts(spec: RuleSpec) -> list[Part]:
    """Each piece of the rule, parsed (aliases not expanded)."""
    parts: list[Part] = []
    if spec.query is not None and spec.query.strip():
        parts.append((_parse(spec, "query", None, spec.query), "query", None, spec.query))
    for key in ("all", "any", "none"):
        entries: tuple[str, ...] = getattr(spec, key)
        for i, entry in enumerate(entries):
            parts.append((_parse(spec, key, i, entry), key, i, entry))
    if not parts:
        raise QueryError("rule has nothing to match: give query, all, any or none", rule=spec.name)
    return parts


def combine(parts: Sequence[tuple[Node, str]]) -> Node:
    """AND the query and ``all`` entries, one OR of the ``any`` entries, NOT each ``none``."""
    nodes = [n for n, key in parts if key in ("query", "all")]
    anys = [n for n, key in parts if key == "any"]
    if anys:
        nodes.append(or_(anys))
    nodes.extend(Not(n) for n, key in parts if key == "none")
    return and_(nodes)


def spec_node(spec: RuleSpec) -> Node:
    """The rule's AST with aliases unexpanded (list forms give the same AST as a query)."""
    return combine([(node, key) for node, key, _, _ in spec_parts(spec)])


class AliasTable:
    """Parsed and expanded aliases; ``errors`` holds what was wrong with them."""

    def __init__(self, aliases: Mapping[str, Sequence[str]] | None) -> None:
        given = dict(aliases or {})
        # A bare string would otherwise be read as a list of its characters.
        self.raw: dict[str, list[str]] = {
            k: [] if isinstance(v, str) else [str(e) for e in v] for k, v in given.items()
        }
        self.errors: list[QueryError] = []
        self.expanded: dict[str, Node] = {}
        self.broken: dict[str, QueryError] = {}
        self._entries: dict[str, list[Node]] = {}
        for name, entries in self.raw.items():
            self._parse(name, entries)
        for name in self.raw:
            self._expand(name, [])

    def _fail(self, name: str, error: QueryError) -> None:
        if name not in self.broken:
            self.broken[name] = error
            self.errors.append(error)

    def _parse(self, name: str, entries: list[str]) -> None:
        if not entries:
            self._fail(
                name, QueryError("an alias needs a list of entries", rule=name, key="aliases")
            )
            return
        parsed: list[Node] = []
        for i, entry in enumerate(entries):
            try:
                parsed.append(parse_entry(entry))
            except QueryError as e:
                self._fail(name, e.with_context(rule=name, key="aliases", index=i))
                return
        self._entries[name] = parsed

    def _expand(self, name: str, stack: list[str]) -> None:
        if name in self.expanded or name in self.broken:
            return
        stack.append(name)
        nodes = self._entries[name]
        for i, node in enumerate(nodes):
            text = self.raw[name][i]
            try:
                nodes[i] = self.resolve(node, text, stack)
            except QueryError as e:
                self._fail(name, e.with_context(rule=name, key="aliases", index=i))
                stack.pop()
                return
        stack.pop()
        self.expanded[name] = or_(nodes)

    def resolve(self, node: Node, text: str, stack: list[str] | None = None) -> Node:
        """``node`` with its aliases expanded; errors point into ``text``."""
        stack = stack if stack is not None else []
        for alias in alias_names(node):
            name = alias.name
            if name not in self.raw:
                close = difflib.get_close_matches(name, self.raw, n=1)
                hint = f"; did you mean @{close[0]}?" if close else ""
                raise QueryError(f"unknown alias @{name}{hint}", text=text, position=alias.pos)
            if name in stack:
                cycle = " -> ".join(f"@{n}" for n in [*stack[stack.index(name) :], name])
                raise QueryError(f"alias cycle: {cycle}", text=text, position=alias.pos)
            self._expand(name, stack)
            if name in self.broken:
                raise QueryError(
                    f"alias @{name} is invalid ({self.broken[name].message})",
                    text=text,
                    position=alias.pos,
                )
        expanded = substitute(node, self.expanded)
        near = bad_near(expanded)
        if near is not None:
            raise QueryError(
                f"NEAR/{near.distance} works on words, phrases and OR-groups of them",
                text=text,
                position=near.pos,
            )
        return expanded


def expand_spec(spec: RuleSpec, aliases: AliasTable) -> Node:
    """The rule's full AST with aliases expanded; raises ``QueryError``."""
    resolved: list[tuple[Node, str]] = []
    for node, key, index, text in spec_parts(spec):
        try:
            resolved.append((aliases.resolve(node, text), key))
        except QueryError as e:
            raise e.with_context(rule=spec.name, key=key, index=index) from None
    return combine(resolved)


def alias_names(node: Node) -> list[Alias]:
    """Every ``@alias`` in ``node``."""
    if isinstance(node, Alias):
        return [node]
    if isinstance(node, Near):
        return alias_names(node.left) + alias_names(node.right)
    if isinstance(node, Field | Not):
        return alias_names(node.child)
    if isinstance(node, And | Or):
        return [a for c in node.children for a in alias_names(c)]
    return []


def substitute(node: Node, table: dict[str, Node]) -> Node:
    """``node`` with every alias replaced by its (already expanded) definition."""
    if isinstance(node, Alias):
        return table[node.name]
    if isinstance(node, Near):
        return Near(
            substitute(node.left, table), substitute(node.right, table), node.distance, node.pos
        )
    if isinstance(node, Field):
        return Field(node.name, substitute(node.child, table), node.pos)
    if isinstance(node, Not):
        return Not(substitute(node.child, table))
    if isinstance(node, And):
        return And(tuple(substitute(c, table) for c in node.children))
    if isinstance(node, Or):
        return Or(tuple(substitute(c, table) for c in node.children))
    return node


def bad_near(node: Node) -> Near | None:
    """A NEAR whose operand (after alias expansion) is not words/phrases."""
    if isinstance(node, Near):
        if not (is_positional(node.left) and is_positional(node.right)):
            return node
        return None
    if isinstance(node, Field | Not):
        return bad_near(node.child)
    if isinstance(node, And | Or):
        for c in node.children:
            found = bad_near(c)
            if found is not None:
                return found
    return None

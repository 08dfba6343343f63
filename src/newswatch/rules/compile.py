"""From a rule's AST to a plan, a fast predicate and presearch keys.

``lower`` turns an AST (aliases already expanded) into a small plan tree:
fields are pushed down to the leaves and every word or phrase becomes a
``TermPattern``. ``predicate`` turns a plan into nested closures over a
``View`` (no visitor, no dispatch on the hot path). ``required_keys`` picks
the terms a rule cannot match without (the Luwak/Lucene-Monitor presearcher):
one child of an AND, every branch of an OR, nothing under a NOT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from newswatch.rules.doc import Predicate, View
from newswatch.rules.query import (
    DEFAULT_FIELDS,
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
    is_positional,
)
from newswatch.rules.terms import Key, TermPattern, analyze, compile_term

ANY_DEFAULT: Final = "*"  # field key of an unfielded term: title, summary or content


def fields_of(key: str) -> tuple[str, ...]:
    return DEFAULT_FIELDS if key == ANY_DEFAULT else (key,)


def _label(node: Node, fld: str) -> str:
    text = describe(node)
    return text if fld == ANY_DEFAULT else f"{fld}:{text}"


@dataclass(slots=True)
class TermLeaf:
    label: str
    pattern: TermPattern
    field: str


@dataclass(slots=True)
class RegexLeaf:
    label: str
    rx: re.Pattern[str]
    field: str


@dataclass(slots=True)
class NearLeaf:
    label: str
    left: tuple[TermLeaf, ...]  # alternatives (an OR-group or alias gives several)
    right: tuple[TermLeaf, ...]
    distance: int

    def fields(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for leaf in (*self.left, *self.right):
            seen.update(dict.fromkeys(fields_of(leaf.field)))
        return tuple(seen)


@dataclass(slots=True)
class NotPlan:
    label: str
    child: Plan


@dataclass(slots=True)
class AndPlan:
    label: str
    children: list[Plan] = field(default_factory=list)


@dataclass(slots=True)
class OrPlan:
    label: str
    children: list[Plan] = field(default_factory=list)


Plan = TermLeaf | RegexLeaf | NearLeaf | NotPlan | AndPlan | OrPlan


class Lowerer:
    """Lowers ASTs for one casing; shares term patterns between rules."""

    def __init__(self, casefold: bool) -> None:
        self.casefold = casefold
        self._terms: dict[tuple[str, bool, bool], TermPattern] = {}

    def term(self, node: Word | Phrase) -> TermPattern:
        phrase = isinstance(node, Phrase)
        prefix = isinstance(node, Word) and node.prefix
        cache_key = (node.text, prefix, phrase)
        found = self._terms.get(cache_key)
        if found is None:
            tokens = analyze(node.text, self.casefold, prefix=prefix, phrase=phrase)
            found = self._terms[cache_key] = compile_term(tokens)
        return found

    def lower(self, node: Node, fld: str = ANY_DEFAULT) -> Plan:
        if isinstance(node, Word | Phrase):
            return TermLeaf(_label(node, fld), self.term(node), fld)
        if isinstance(node, Regex):
            flags = re.IGNORECASE if node.ignore_case or self.casefold else 0
            return RegexLeaf(_label(node, fld), re.compile(node.pattern, flags), fld)
        if isinstance(node, Field):
            plan = self.lower(node.child, node.name)
            plan.label = describe(node)
            return plan
        if isinstance(node, Not):
            return NotPlan(_label(node, fld), self.lower(node.child, fld))
        if isinstance(node, And):
            return AndPlan(_label(node, fld), [self.lower(c, fld) for c in node.children])
        if isinstance(node, Or):
            return OrPlan(_label(node, fld), [self.lower(c, fld) for c in node.children])
        if isinstance(node, Near):
            left = self.operand(node.left, fld)
            right = self.operand(node.right, fld)
            return NearLeaf(_label(node, fld), left, right, node.distance)
        raise AssertionError(f"alias @{node.name} was not expanded")  # pragma: no cover

    def operand(self, node: Node, fld: str) -> tuple[TermLeaf, ...]:
        if isinstance(node, Word | Phrase):
            return (TermLeaf(_label(node, fld), self.term(node), fld),)
        if isinstance(node, Field):
            return self.operand(node.child, node.name)
        if isinstance(node, Or):
            return tuple(leaf for c in node.children for leaf in self.operand(c, fld))
        raise AssertionError(f"not a NEAR operand: {describe(node)}")  # pragma: no cover


# --- predicates ------------------------------------------------------------


def _speed(plan: Plan) -> int:
    """Rough evaluation cost, to test cheap children of AND/OR first."""
    if isinstance(plan, TermLeaf):
        return 0 if plan.pattern.single is not None else 1 if plan.pattern.rx is None else 2
    if isinstance(plan, NotPlan):
        return _speed(plan.child)
    if isinstance(plan, AndPlan | OrPlan):
        return max(_speed(c) for c in plan.children) + 1
    return 3 if isinstance(plan, NearLeaf) else 4


def predicate(plan: Plan) -> Predicate:
    """The plan as nested closures: ``fn(view) -> bool``."""
    if isinstance(plan, TermLeaf):
        return _term_predicate(plan.pattern, plan.field)
    if isinstance(plan, RegexLeaf):
        rx, names = plan.rx, fields_of(plan.field)
        return lambda v: any(rx.search(v.doc.regex_text(n)[0]) is not None for n in names)
    if isinstance(plan, NearLeaf):
        return lambda v: near_matches(plan, v)
    if isinstance(plan, NotPlan):
        child = plan.child
        if isinstance(child, TermLeaf) and child.pattern.single is not None:
            token, fld = child.pattern.single, child.field
            return lambda v: token not in v.sets[fld]
        fn = predicate(child)
        return lambda v: not fn(v)
    is_and = isinstance(plan, AndPlan)
    fns = _fused_singles(plan.children, is_and)
    fns += [predicate(c) for c in sorted(plan.children, key=_speed) if not _single(c)]
    if len(fns) == 1:
        return fns[0]
    if is_and:
        if len(fns) == 2:
            a, b = fns
            return lambda v: a(v) and b(v)
        return lambda v: all(f(v) for f in fns)
    if len(fns) == 2:
        a, b = fns
        return lambda v: a(v) or b(v)
    return lambda v: any(f(v) for f in fns)


def _single(plan: Plan) -> bool:
    return isinstance(plan, TermLeaf) and plan.pattern.single is not None


def _fused_singles(children: list[Plan], is_and: bool) -> list[Predicate]:
    """One closure per field for the one-word children of an AND/OR: fewer
    calls on the hot path and less memory per rule."""
    by_field: dict[str, list[str]] = {}
    for c in children:
        if isinstance(c, TermLeaf) and c.pattern.single is not None:
            by_field.setdefault(c.field, []).append(c.pattern.single)
    out: list[Predicate] = []
    for fld, toks in by_field.items():
        if len(toks) == 1:
            t = toks[0]
            out.append(lambda v: t in v.sets[fld])
        elif len(toks) == 2:
            a, b = toks
            if is_and:
                out.append(lambda v: a in (s := v.sets[fld]) and b in s)
            else:
                out.append(lambda v: a in (s := v.sets[fld]) or b in s)
        else:
            group = tuple(toks)
            if is_and:
                out.append(lambda v: all(map(v.sets[fld].__contains__, group)))
            else:
                out.append(lambda v: any(map(v.sets[fld].__contains__, group)))
    return out


def _term_predicate(pattern: TermPattern, fld: str) -> Predicate:
    if pattern.single is not None:
        token = pattern.single
        return lambda v: token in v.sets[fld]
    if pattern.rx is None:
        search = pattern.search
        return lambda v: search in v.joins[fld]
    rx = pattern.rx
    return lambda v: rx.search(v.joins[fld]) is not None


Occurrence = tuple[int, int, int, int]  # first/last word position, [start, end) in joined


def occurrences(leaves: tuple[TermLeaf, ...], view: View, name: str) -> list[Occurrence]:
    """Where any of ``leaves`` occurs in field ``name``."""
    ft = view.fields[name]
    out: list[Occurrence] = []
    for leaf in leaves:
        if name not in fields_of(leaf.field):
            continue
        if leaf.pattern.rx is None and leaf.pattern.search not in ft.joined:
            continue  # the cheap test first: most fields do not hold the term
        pos = ft.positions()
        for start, end in leaf.pattern.occurrences(ft):
            out.append((pos[ft.token_at(start)], pos[ft.token_at(end - 1)], start, end))
    return out


def near_pairs(
    left: list[Occurrence], right: list[Occurrence], distance: int
) -> list[tuple[Occurrence, Occurrence]]:
    """Pairs of non-overlapping occurrences with at most ``distance`` words between."""
    pairs = []
    for lo in left:
        for ro in right:
            if lo[3] <= ro[2]:
                between = ro[0] - lo[1] - 1
            elif ro[3] <= lo[2]:
                between = lo[0] - ro[1] - 1
            else:
                continue  # the same words cannot be both sides
            if between <= distance:
                pairs.append((lo, ro))
    return pairs


def near_matches(plan: NearLeaf, view: View) -> bool:
    for name in plan.fields():
        left = occurrences(plan.left, view, name)
        if left:
            right = occurrences(plan.right, view, name)
            if right and near_pairs(left, right, plan.distance):
                return True
    return False


# --- presearch keys ----------------------------------------------------------


def required_keys(plan: Plan) -> tuple[float, frozenset[Key]] | None:
    """Keys at least one of which every matching article has; None: any article may match."""
    if isinstance(plan, TermLeaf):
        return plan.pattern.cost, frozenset({plan.pattern.key})
    if isinstance(plan, NearLeaf):
        sides = [_any_of([(x.pattern.cost, frozenset({x.pattern.key})) for x in s])
                 for s in (plan.left, plan.right)]
        return min((s for s in sides if s is not None), key=lambda s: s[0], default=None)
    if isinstance(plan, AndPlan):
        found = [k for k in map(required_keys, plan.children) if k is not None]
        return min(found, key=lambda k: k[0], default=None)
    if isinstance(plan, OrPlan):
        return _any_of([required_keys(c) for c in plan.children])
    return None  # NOT and regex: nothing is required


def _any_of(options: list[tuple[float, frozenset[Key]] | None]) -> tuple[float, frozenset[Key]] | None:
    if not options or any(o is None for o in options):
        return None
    keys: frozenset[Key] = frozenset().union(*(o[1] for o in options if o is not None))
    return sum(o[0] for o in options if o is not None), keys


# --- aliases -----------------------------------------------------------------


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
        return Near(substitute(node.left, table), substitute(node.right, table), node.distance, node.pos)
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

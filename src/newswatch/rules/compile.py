"""From a rule's AST to a plan, a fast predicate and presearch keys.

``lower`` turns an AST (aliases already expanded) into a small plan tree:
fields are pushed down to the leaves and every word or phrase becomes a
``TermPattern``. ``predicate`` turns a plan into nested closures over a
``View`` (no visitor, no dispatch on the hot path). ``required_clauses``
lists the terms a rule cannot match without (the Luwak/Lucene-Monitor
presearcher): every child of an AND, one clause for an OR, nothing under a NOT.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from newswatch.rules.doc import Predicate, View
from newswatch.rules.query import (
    DEFAULT_FIELDS,
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
)
from newswatch.rules.terms import E, Key, TermPattern, analyze, compile_term

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
    fields: tuple[str, ...] = ()  # every field either side looks at

    def __post_init__(self) -> None:
        seen: dict[str, None] = {}
        for leaf in (*self.left, *self.right):
            seen.update(dict.fromkeys(fields_of(leaf.field)))
        self.fields = tuple(seen)


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


SharedCache = dict[tuple[object, ...], Predicate]


def predicate(plan: Plan, shared: SharedCache | None = None) -> Predicate:
    """The plan as nested closures: ``fn(view) -> bool``.

    With ``shared``, identical leaf tests are one closure for all the rules
    that use them (they are pure functions of the view).
    """
    if shared is None:
        shared = {}
    if isinstance(plan, TermLeaf):
        key: tuple[object, ...] = ("term", plan.pattern, plan.field)
        found = shared.get(key)
        if found is None:
            found = shared[key] = _term_predicate(plan.pattern, plan.field)
        return found
    if isinstance(plan, RegexLeaf):
        return _regex_predicate(plan)
    if isinstance(plan, NearLeaf):
        # Both sides present (cheap) before word positions (not cheap).
        left = predicate(OrPlan(plan.label, list(plan.left)), shared)
        right = predicate(OrPlan(plan.label, list(plan.right)), shared)
        return lambda v: left(v) and right(v) and near_matches(plan, v)
    if isinstance(plan, NotPlan):
        child = plan.child
        if isinstance(child, TermLeaf) and child.pattern.single is not None:
            token, fld = child.pattern.single, child.field
            return lambda v: token not in v.sets[fld]
        fn = predicate(child, shared)
        return lambda v: not fn(v)
    is_and = isinstance(plan, AndPlan)
    fns = _fused_singles(plan.children, is_and, shared)
    fns += [predicate(c, shared) for c in sorted(plan.children, key=_speed) if not _single(c)]
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


def _fused_singles(children: list[Plan], is_and: bool, shared: SharedCache) -> list[Predicate]:
    """One closure per field for the one-word children of an AND/OR: fewer
    calls on the hot path and less memory per rule."""
    by_field: dict[str, list[str]] = {}
    for c in children:
        if isinstance(c, TermLeaf) and c.pattern.single is not None:
            by_field.setdefault(c.field, []).append(c.pattern.single)
    out = []
    for fld, toks in by_field.items():
        key = ("set", fld, tuple(toks), is_and)
        found = shared.get(key)
        if found is None:
            found = shared[key] = _set_check(fld, tuple(toks), is_and)
        out.append(found)
    return out


def _set_check(fld: str, toks: tuple[str, ...], is_and: bool) -> Predicate:
    if len(toks) == 1:
        t = toks[0]
        return lambda v: t in v.sets[fld]
    if len(toks) == 2:
        a, b = toks
        if is_and:
            return lambda v: a in (s := v.sets[fld]) and b in s
        return lambda v: a in (s := v.sets[fld]) or b in s
    if is_and:
        return lambda v: all(map(v.sets[fld].__contains__, toks))
    return lambda v: any(map(v.sets[fld].__contains__, toks))


def _term_predicate(pattern: TermPattern, fld: str) -> Predicate:
    tokens = pattern.tokens
    if pattern.single is not None:
        token = pattern.single
        return lambda v: token in v.sets[fld]
    if pattern.rx is not None:
        rx = pattern.rx
        return lambda v: rx.search(v.joins[fld]) is not None
    search = pattern.search
    # Set lookups of the two longest whole words reject most articles before
    # the substring search of the whole field (a few microseconds).
    exact = sorted({t for t, kind in tokens if kind == E}, key=len, reverse=True)
    if not exact:
        return lambda v: search in v.joins[fld]
    if len(exact) == 1:
        a = exact[0]
        return lambda v: a in v.sets[fld] and search in v.joins[fld]
    a, b = exact[:2]
    return lambda v: a in (s := v.sets[fld]) and b in s and search in v.joins[fld]


def _regex_predicate(plan: RegexLeaf) -> Predicate:
    rx, names = plan.rx, fields_of(plan.field)
    literal = regex_literal(plan.rx.pattern)
    if literal is None:
        return lambda v: any(rx.search(v.doc.regex_text(n)[0]) is not None for n in names)
    # A word-character literal that every match contains sits inside one token.
    return lambda v: (
        literal in v.doc.ci.joins[plan.field]
        and any(rx.search(v.doc.regex_text(n)[0]) is not None for n in names)
    )


_LITERAL = re.compile(r"(?:\^|\\b)?([A-Za-z0-9]+)(.?)")


def regex_literal(pattern: str) -> str | None:
    """Lower-cased ASCII letters and digits that open every match of ``pattern``, if any."""
    m = _LITERAL.match(pattern)
    if m is None or "|" in pattern:
        return None
    literal = m.group(1)
    if m.group(2) in ("?", "*", "{"):
        literal = literal[:-1]  # the last character is optional
    return literal.lower() if len(literal) >= 3 else None


Occurrence = tuple[int, int, int, int]  # first/last word position, [start, end) in joined


def occurrences(leaves: tuple[TermLeaf, ...], view: View, name: str) -> list[Occurrence]:
    """Where any of ``leaves`` occurs in field ``name``."""
    ft = view.fields[name]
    joined = ft.joined
    # The cheap test first (most fields do not hold the term): a set lookup,
    # in the field's own set if built, else in the "*" set that is always
    # there (building the set of a long content costs more than it saves).
    sets = view.sets
    words = sets.get(name)  # dict.get: no lazy build
    if words is None:
        words = sets[ANY_DEFAULT] if name in DEFAULT_FIELDS else sets[name]
    out: list[Occurrence] = []
    for leaf in leaves:
        if name not in fields_of(leaf.field):
            continue
        single = leaf.pattern.single
        if single is not None and single not in words:
            continue
        if ft.value_counts is not None:
            pos = ft.positions()
            for start, end in leaf.pattern.occurrences(ft):
                out.append((pos[ft.token_at(start)], pos[ft.token_at(end - 1)], start, end))
            continue
        # One value: the word position of an offset is the number of spaces
        # before it, less one; count them as the occurrences go by.
        seen, spaces = 0, 0
        for start, end in leaf.pattern.occurrences(ft):
            spaces += joined.count(" ", seen, start)
            inside = joined.count(" ", start, end)
            out.append((spaces - 1, spaces - 1 + inside, start, end))
            seen = start
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
    for name in plan.fields:
        left = occurrences(plan.left, view, name)
        if left:
            right = occurrences(plan.right, view, name)
            if right and near_pairs(left, right, plan.distance):
                return True
    return False


# --- presearch keys ----------------------------------------------------------

Clause = tuple[float, frozenset[Key]]  # (cost, keys): at least one key is present


def required_clauses(plan: Plan) -> list[Clause]:
    """Clauses that every matching article satisfies, all of them (an empty
    list: any article may match)."""
    if isinstance(plan, TermLeaf):
        return [(cost, frozenset({key})) for cost, key in plan.pattern.keys]
    if isinstance(plan, NearLeaf):
        sides = [_any_of([required_clauses(x) for x in side]) for side in (plan.left, plan.right)]
        return [c for c in sides if c is not None]
    if isinstance(plan, AndPlan):
        return [c for child in plan.children for c in required_clauses(child)]
    if isinstance(plan, OrPlan):
        found = _any_of([required_clauses(c) for c in plan.children])
        return [] if found is None else [found]
    return []  # NOT and regex: nothing is required


def _any_of(options: list[list[Clause]]) -> Clause | None:
    """One clause for an OR: the cheapest clause of each branch, merged."""
    if not options or any(not o for o in options):
        return None
    best = [min(o, key=lambda c: c[0]) for o in options]
    return sum(c[0] for c in best), frozenset().union(*(c[1] for c in best))

"""All rules compiled into one percolator-style index.

Each rule is filed under the presearch keys it cannot match without (see
``compile.required_clauses`` and ``choose_keys``); rules without any (only NOT, only regex) are
"always candidates". For an article the index analyses every field once,
looks the article's tokens up among the keys, and runs the full predicate of
the candidate rules only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from newswatch.model import Article, Explanation, Match
from newswatch.rules.compile import Clause, Lowerer, Plan, predicate, required_clauses
from newswatch.rules.doc import Doc, Predicate, View
from newswatch.rules.errors import QueryError
from newswatch.rules.explain import LazyExplanation, Verdict, explanation, miss_reason
from newswatch.rules.spec import AliasTable, RuleSpec, expand_spec
from newswatch.rules.terms import Key


@dataclass(frozen=True, slots=True)
class IndexStats:
    rules: int
    indexed_terms: int  # distinct presearch keys
    always_candidates: int  # rules evaluated for every article
    postings: int  # (key, rule) entries
    case_sensitive_rules: int
    scoped_rules: int


@dataclass(slots=True)
class _Rule:
    spec: RuleSpec
    fn: Predicate
    casefold: bool
    scope: frozenset[str] | None


# Plans (for explanations) are rebuilt from the spec on demand and cached;
# past this many the cache starts over, so memory stays bounded.
PLAN_CACHE_MAX: Final = 20_000


# A rule is filed under pairs (key of its cheapest clause, key of the next):
# it is a candidate only when the article has both. Past this many pairs per
# rule (OR-groups on both sides) it is filed under the first clause alone.
MAX_PAIRS: Final = 16
# With this few prefix keys, testing each against the article beats listing
# the first three letters of every article token.
FEW_PREFIXES: Final = 32

Choice = tuple[frozenset[Key], frozenset[Key] | None]  # first clause, optional second


def choose_keys(clauses: list[Clause]) -> Choice | None:
    """The cheapest required clause, and a second one to narrow it down."""
    if not clauses:
        return None
    ordered = sorted(set(clauses), key=lambda c: (c[0], sorted(c[1])))
    first = ordered[0][1]
    for _, keys in ordered[1:]:
        if keys != first and len(first) * len(keys) <= MAX_PAIRS:
            if all(kind == "x" for kind, _ in keys):
                return first, keys
    return first, None


class _Presearch:
    """Keys -> rule ids, for one casing."""

    def __init__(self) -> None:
        self._single: dict[str, list[int]] = {}
        self._pairs: dict[str, dict[str, list[int]]] = {}
        self._prefix: dict[str, list[int]] = {}
        self._always: list[int] = []
        self.single: dict[str, tuple[int, ...]] = {}
        self.pairs: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {}
        self.prefix: dict[str, tuple[int, ...]] = {}
        self.always: tuple[int, ...] = ()
        self.keys: frozenset[str] = frozenset()
        self.prefix_keys: frozenset[str] = frozenset()
        self.rules = 0

    def add(self, rid: int, choice: Choice | None) -> None:
        self.rules += 1
        if choice is None:
            self._always.append(rid)
            return
        first, second = choice
        for kind, text in first:
            if kind == "p":
                self._prefix.setdefault(text, []).append(rid)
            elif second is None:
                self._single.setdefault(text, []).append(rid)
            else:
                pairs = self._pairs.setdefault(text, {})
                for _, text2 in second:
                    pairs.setdefault(text2, []).append(rid)

    def freeze(self) -> None:
        self.single = {k: tuple(v) for k, v in self._single.items()}
        self.pairs = {k: tuple((k2, tuple(v)) for k2, v in d.items()) for k, d in self._pairs.items()}
        self.prefix = {k: tuple(v) for k, v in self._prefix.items()}
        self.always = tuple(self._always)
        self.keys = frozenset(self.single).union(self.pairs)
        self.prefix_keys = frozenset(self.prefix)
        self._single, self._pairs, self._prefix, self._always = {}, {}, {}, []

    def candidates(self, view: View, out: set[int]) -> None:
        out.update(self.always)
        lookup = view.lookup
        single, pairs = self.single, self.pairs
        for key in lookup & self.keys:
            rids = single.get(key)
            if rids is not None:
                out.update(rids)
            second = pairs.get(key)
            if second is not None:
                for key2, rids in second:
                    if key2 in lookup:
                        out.update(rids)
        if self.prefix:
            prefix = self.prefix
            if len(prefix) <= FEW_PREFIXES:
                joins = view.joins.values()
                for key in self.prefix_keys:
                    needle = " " + key
                    if any(needle in joined for joined in joins):
                        out.update(prefix[key])
            else:
                for key in view.prefix3() & self.prefix_keys:
                    out.update(prefix[key])

    def postings(self) -> int:
        pairs = sum(len(v) for d in self.pairs.values() for _, v in d)
        return pairs + sum(map(len, self.single.values())) + sum(map(len, self.prefix.values()))

    def key_count(self) -> int:
        return len(self.keys) + len(self.prefix_keys)


class RuleIndex:
    """Compiled rules; ``match`` finds which of them an article satisfies."""

    def __init__(self, compiled: list[tuple[_Rule, Choice | None]], aliases: AliasTable):
        self._rules = [rule for rule, _ in compiled]
        self._aliases = aliases
        self._by_name = {r.spec.name: i for i, r in enumerate(self._rules)}
        self._plans: dict[int, Plan] = {}
        self._lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}
        self._ci = _Presearch()
        self._cs = _Presearch()
        for rid, (rule, keys) in enumerate(compiled):
            (self._ci if rule.casefold else self._cs).add(rid, keys)
        self._ci.freeze()
        self._cs.freeze()

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(r.spec.name for r in self._rules)

    def _plan(self, rid: int) -> Plan:
        plan = self._plans.get(rid)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_MAX:
                self._plans.clear()
                self._lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}
            rule = self._rules[rid]
            node = expand_spec(rule.spec, self._aliases)
            plan = self._plans[rid] = self._lowerers[rule.casefold].lower(node)
        return plan

    def _explanation(self, rid: int, doc: Doc) -> Explanation:
        return LazyExplanation(lambda: explanation(self._plan(rid), doc.view(self._rules[rid].casefold)))

    def match(self, article: Article) -> list[Match]:
        """The rules ``article`` matches, in rule order, each with its explanation."""
        doc = Doc(article)
        found: set[int] = set()
        self._ci.candidates(doc.ci, found)
        if self._cs.rules:
            self._cs.candidates(doc.cs, found)
        rules = self._rules
        out = []
        for rid in sorted(found):
            rule = rules[rid]
            if rule.scope is not None and rule.scope.isdisjoint(doc.scope_keys()):
                continue
            if rule.fn(doc.ci if rule.casefold else doc.cs):
                out.append(Match(rule.spec.name, article, self._explanation(rid, doc)))
        return out

    def match_text(
        self, text: str, *, title: str = "", source: str = "", tags: tuple[str, ...] = ()
    ) -> list[Match]:
        """Convenience: match loose text (as an article's content)."""
        return self.match(text_article(text, title=title, source=source, tags=tags))

    def explain(self, rule_name: str, article: Article) -> Verdict:
        """Evaluate one rule on one article and say why it matched or not."""
        rid = self._by_name[rule_name]
        rule = self._rules[rid]
        doc = Doc(article)
        view = doc.view(rule.casefold)
        plan = self._plan(rid)
        if rule.scope is not None and rule.scope.isdisjoint(doc.scope_keys()):
            reason = f"out of scope (feeds: {', '.join(rule.spec.scope)})"
            return Verdict(rule_name, False, explanation(plan, view), reason)
        ex = explanation(plan, view)
        if rule.fn(view):
            terms = ", ".join(ex.terms)
            return Verdict(rule_name, True, ex, f"matched: {terms}" if terms else "matched")
        return Verdict(rule_name, False, ex, miss_reason(plan, view))

    def stats(self) -> IndexStats:
        ci, cs = self._ci, self._cs
        return IndexStats(
            rules=len(self._rules),
            indexed_terms=ci.key_count() + cs.key_count(),
            always_candidates=len(ci.always) + len(cs.always),
            postings=ci.postings() + cs.postings(),
            case_sensitive_rules=cs.rules,
            scoped_rules=sum(r.scope is not None for r in self._rules),
        )


def text_article(
    text: str, *, title: str = "", source: str = "", tags: tuple[str, ...] = ()
) -> Article:
    """A minimal Article around loose text (for ``match_text`` and tests)."""
    return Article(
        feed_key="text",
        entry_key="text",
        story_key="text",
        title=title,
        summary="",
        content=text,
        link="",
        canonical_url="",
        author="",
        categories=(),
        published=datetime(1970, 1, 1, tzinfo=UTC),
        source=source,
        tags=tags,
    )


def _compile_one(
    spec: RuleSpec, aliases: AliasTable, lowerers: dict[bool, Lowerer]
) -> tuple[_Rule, Choice | None]:
    node = expand_spec(spec, aliases)
    casefold = not spec.case_sensitive
    plan = lowerers[casefold].lower(node)
    scope = frozenset(s.casefold() for s in spec.scope) if spec.scope else None
    return _Rule(spec, predicate(plan), casefold, scope), choose_keys(required_clauses(plan))


def _compile(
    specs: Sequence[RuleSpec], aliases: Mapping[str, Sequence[str]] | None, *, stop: bool
) -> tuple[RuleIndex | None, list[QueryError]]:
    table = AliasTable(aliases)
    errors = list(table.errors)
    if errors and stop:
        raise errors[0]
    # Term patterns are shared between rules while compiling, then let go.
    lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}
    compiled: list[tuple[_Rule, Choice | None]] = []
    names: set[str] = set()
    for spec in specs:
        try:
            if spec.name in names:
                raise QueryError("duplicate rule name", rule=spec.name, key="name")
            names.add(spec.name)
            compiled.append(_compile_one(spec, table, lowerers))
        except QueryError as e:
            if stop:
                raise
            errors.append(e)
    return (RuleIndex(compiled, table) if stop else None), errors


def compile_rules(
    specs: Sequence[RuleSpec], aliases: Mapping[str, Sequence[str]] | None = None
) -> RuleIndex:
    """Compile every rule into one index; raise ``QueryError`` for the first bad one."""
    index, _ = _compile(specs, aliases, stop=True)
    assert index is not None
    return index


def check_rules(
    specs: Sequence[RuleSpec], aliases: Mapping[str, Sequence[str]] | None = None
) -> list[QueryError]:
    """Every error in the rules and aliases (empty: all good)."""
    return _compile(specs, aliases, stop=False)[1]

"""All rules compiled into one percolator-style index.

Each rule is filed under the presearch keys it cannot match without (see
``compile.required_clauses`` and ``choose_keys``); rules without any (only
NOT, only regex) are "always candidates". For an article the index analyses
every field once,
looks the article's tokens up among the keys, and runs the full predicate of
the candidate rules only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, cast

from newswatch.model import Article, Explanation, Match
from newswatch.rules.compile import Clause, Lowerer, Plan, SharedCache, predicate, required_clauses
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


Choice = tuple[frozenset[Key], frozenset[Key] | None]  # first clause, optional second
SharedPredicates = dict[bool, SharedCache]
Posting = int | tuple[int, ...]  # one rule id, or several (most keys file one rule)


def _posting(rids: list[int]) -> Posting:
    return rids[0] if len(rids) == 1 else tuple(rids)


def _add(out: set[int], posting: Posting) -> None:
    if isinstance(posting, int):
        out.add(posting)
    else:
        out.update(posting)


@dataclass(slots=True)
class _Rule:
    """One compiled rule, while the index is being built."""

    spec: RuleSpec
    fn: Predicate
    casefold: bool
    scope: frozenset[str] | None
    keys: Choice | None


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


def choose_keys(clauses: list[Clause]) -> Choice | None:
    """The cheapest required clause, and a second one to narrow it down."""
    if not clauses:
        return None
    ordered = sorted(set(clauses), key=lambda c: (c[0], sorted(c[1])))
    first = ordered[0][1]
    for _, keys in ordered[1:]:
        fits = keys != first and len(first) * len(keys) <= MAX_PAIRS
        if fits and all(kind == "x" for kind, _ in keys):
            return first, keys
    return first, None


class _Presearch:
    """Keys -> rule ids, for one casing."""

    def __init__(self) -> None:
        self._single: dict[str, list[int]] = {}
        self._pairs: dict[str, dict[str, list[int]]] = {}
        self._prefix: dict[str, list[int]] = {}
        self._always: list[int] = []
        self.single: dict[str, Posting] = {}
        # key -> (key2, posting, key2, posting, ...): flat, to save a tuple per entry
        self.pairs: dict[str, tuple[str | Posting, ...]] = {}
        self.prefix: dict[str, Posting] = {}
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
        self.single = {k: _posting(v) for k, v in self._single.items()}
        self.pairs = {
            k: tuple(x for k2, v in d.items() for x in (k2, _posting(v)))
            for k, d in self._pairs.items()
        }
        self.prefix = {k: _posting(v) for k, v in self._prefix.items()}
        self.always = tuple(self._always)
        self.keys = frozenset(self.single).union(self.pairs)
        self.prefix_keys = frozenset(self.prefix)
        self._single, self._pairs, self._prefix, self._always = {}, {}, {}, []

    def candidates(self, view: View, out: set[int]) -> None:
        out.update(self.always)
        lookup, extra = view.lookup, view.extra  # disjoint sets
        single, pairs, keys = self.single, self.pairs, self.keys
        found = lookup & keys
        if extra:
            found |= extra & keys
        add, update = out.add, out.update  # _add, inlined: this loop is hot
        for key in found:
            posting = single.get(key)
            if posting is not None:
                if isinstance(posting, int):
                    add(posting)
                else:
                    update(posting)
            second = pairs.get(key)
            if second is not None:
                for i in range(0, len(second), 2):
                    key2 = second[i]
                    if key2 in lookup or key2 in extra:
                        posting = cast(Posting, second[i + 1])
                        if isinstance(posting, int):
                            add(posting)
                        else:
                            update(posting)
        if self.prefix:
            prefix = self.prefix
            if len(prefix) <= FEW_PREFIXES:
                joins = view.joins.values()
                for key in self.prefix_keys:
                    needle = " " + key
                    if any(needle in joined for joined in joins):
                        _add(out, prefix[key])
            else:
                for key in view.prefix3() & self.prefix_keys:
                    _add(out, prefix[key])

    def postings(self) -> int:
        def size(p: Posting) -> int:
            return 1 if isinstance(p, int) else len(p)

        pairs = sum(
            size(cast(Posting, t[i])) for t in self.pairs.values() for i in range(1, len(t), 2)
        )
        return pairs + sum(map(size, self.single.values())) + sum(map(size, self.prefix.values()))

    def key_count(self) -> int:
        return len(self.keys) + len(self.prefix_keys)


class RuleIndex:
    """Compiled rules; ``match`` finds which of them an article satisfies."""

    def __init__(self, rules: list[_Rule], aliases: AliasTable) -> None:
        # Parallel lists rather than an object per rule: at 100,000 rules
        # every per-rule object costs megabytes.
        self._specs = [r.spec for r in rules]
        self._fns = [r.fn for r in rules]
        self._sensitive = frozenset(i for i, r in enumerate(rules) if not r.casefold)
        self._scopes = {i: r.scope for i, r in enumerate(rules) if r.scope is not None}
        self._aliases = aliases
        self._by_name: dict[str, int] | None = None  # built on first explain()
        self._plans: dict[int, Plan] = {}
        self._lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}
        self._ci = _Presearch()
        self._cs = _Presearch()
        for rid, rule in enumerate(rules):
            (self._ci if rule.casefold else self._cs).add(rid, rule.keys)
        self._ci.freeze()
        self._cs.freeze()

    @property
    def rule_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._specs)

    def _plan(self, rid: int) -> Plan:
        plan = self._plans.get(rid)
        if plan is None:
            if len(self._plans) >= PLAN_CACHE_MAX:
                self._plans.clear()
                self._lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}
            node = expand_spec(self._specs[rid], self._aliases)
            plan = self._plans[rid] = self._lowerers[rid not in self._sensitive].lower(node)
        return plan

    def _explain_now(self, what: tuple[int, Doc]) -> Explanation:
        rid, doc = what
        return explanation(self._plan(rid), doc.view(rid not in self._sensitive))

    def _out_of_scope(self, rid: int, doc: Doc) -> bool:
        scope = self._scopes.get(rid)
        return scope is not None and scope.isdisjoint(doc.scope_keys())

    def match(self, article: Article) -> list[Match]:
        """The rules ``article`` matches, in rule order, each with its explanation."""
        doc = Doc(article)
        found: set[int] = set()
        self._ci.candidates(doc.ci, found)
        if self._cs.rules:
            self._cs.candidates(doc.cs, found)
        fns, specs, scopes, sensitive = self._fns, self._specs, self._scopes, self._sensitive
        ci = doc.ci
        out = []
        for rid in sorted(found):
            if scopes and self._out_of_scope(rid, doc):
                continue
            if fns[rid](doc.cs if sensitive and rid in sensitive else ci):
                lazy = LazyExplanation(self._explain_now, (rid, doc))
                out.append(Match(specs[rid].name, article, lazy))
        return out

    def match_text(
        self, text: str, *, title: str = "", source: str = "", tags: tuple[str, ...] = ()
    ) -> list[Match]:
        """Convenience: match loose text (as an article's content)."""
        return self.match(text_article(text, title=title, source=source, tags=tags))

    def explain(self, rule_name: str, article: Article) -> Verdict:
        """Evaluate one rule on one article and say why it matched or not."""
        if self._by_name is None:
            self._by_name = {s.name: i for i, s in enumerate(self._specs)}
        rid = self._by_name[rule_name]
        doc = Doc(article)
        view = doc.view(rid not in self._sensitive)
        plan = self._plan(rid)
        ex = explanation(plan, view)
        if self._out_of_scope(rid, doc):
            reason = f"out of scope (feeds: {', '.join(self._specs[rid].scope)})"
            return Verdict(rule_name, False, ex, reason)
        if self._fns[rid](view):
            terms = ", ".join(ex.terms)
            return Verdict(rule_name, True, ex, f"matched: {terms}" if terms else "matched")
        return Verdict(rule_name, False, ex, miss_reason(plan, view))

    def stats(self) -> IndexStats:
        ci, cs = self._ci, self._cs
        return IndexStats(
            rules=len(self._specs),
            indexed_terms=ci.key_count() + cs.key_count(),
            always_candidates=len(ci.always) + len(cs.always),
            postings=ci.postings() + cs.postings(),
            case_sensitive_rules=cs.rules,
            scoped_rules=len(self._scopes),
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
    spec: RuleSpec, aliases: AliasTable, lowerers: dict[bool, Lowerer], shared: SharedPredicates
) -> _Rule:
    node = expand_spec(spec, aliases)
    casefold = not spec.case_sensitive
    plan = lowerers[casefold].lower(node)
    scope = frozenset(s.casefold() for s in spec.scope) if spec.scope else None
    keys = choose_keys(required_clauses(plan))
    return _Rule(spec, predicate(plan, shared[casefold]), casefold, scope, keys)


def _compile(
    specs: Sequence[RuleSpec], aliases: Mapping[str, Sequence[str]] | None, *, stop: bool
) -> tuple[RuleIndex | None, list[QueryError]]:
    table = AliasTable(aliases)
    errors = list(table.errors)
    if errors and stop:
        raise errors[0]
    # Term patterns and leaf predicates are shared between rules while
    # compiling (many rules name the same words), then the caches let go.
    lowerers = {True: Lowerer(casefold=True), False: Lowerer(casefold=False)}
    shared: SharedPredicates = {True: {}, False: {}}
    rules: list[_Rule] = []
    names: set[str] = set()
    for spec in specs:
        try:
            if spec.name in names:
                raise QueryError("duplicate rule name", rule=spec.name, key="name")
            names.add(spec.name)
            rules.append(_compile_one(spec, table, lowerers, shared))
        except QueryError as e:
            if stop:
                raise
            errors.append(e)
    return (RuleIndex(rules, table) if not errors else None), errors


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


def compile_checked(
    specs: Sequence[RuleSpec], aliases: Mapping[str, Sequence[str]] | None = None
) -> tuple[RuleIndex | None, list[QueryError]]:
    """Every error, and the index when there are none: one compilation where a
    caller needs both (loading a configuration; at 100,000 rules it takes
    seconds)."""
    return _compile(specs, aliases, stop=False)

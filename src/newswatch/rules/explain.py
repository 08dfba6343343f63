"""Why a rule matched (hits and a snippet) or why it did not (a reason).

Runs only for rules that matched, or on request, so it favours clarity over
speed. Hit offsets are character offsets into the field's display text: the
article's own field text (multi-valued fields joined with ", ").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final, cast

from newswatch.model import Explanation, Hit
from newswatch.rules.compile import (
    AndPlan,
    NearLeaf,
    NotPlan,
    OrPlan,
    Plan,
    RegexLeaf,
    TermLeaf,
    fields_of,
    near_pairs,
    occurrences,
    predicate,
)
from newswatch.rules.doc import View
from newswatch.rules.query import FIELDS
from newswatch.rules.text import to_original

# A story can name "Russia" fifty times; a renderer needs the first few.
MAX_TERM_HITS: Final = 10  # per term and field
MAX_HITS: Final = 100
SNIPPET_CHARS: Final = 200
SNIPPET_BEFORE: Final = 60  # context shown before the first hit
SNIPPET_SNAP: Final = 20  # how far to look for a space to cut at
# The snippet comes from the body when the body has a hit: the title is
# shown by every renderer anyway.
SNIPPET_FIELDS: Final = ("content", "summary", "title", "author", "source", "category", "url")
ELLIPSIS: Final = "…"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The answer to "does rule R match article A, and why (not)?"."""

    rule: str
    matched: bool
    explanation: Explanation
    reason: str

    def to_dict(self) -> dict[str, Any]:
        ex = self.explanation
        return {
            "rule": self.rule,
            "matched": self.matched,
            "reason": self.reason,
            "hits": [
                {"term": h.term, "field": h.field, "start": h.start, "end": h.end} for h in ex.hits
            ],
            "snippet": ex.snippet,
            "highlights": [list(span) for span in ex.highlights],
        }


def _term_hits(leaf: TermLeaf, view: View, names: tuple[str, ...]) -> list[Hit]:
    hits: list[Hit] = []
    cache = view.hits
    label, pattern = leaf.label, leaf.pattern
    single = pattern.single
    # A word absent from the token set of the term's field(s) (an OR branch
    # that did not match, say) has no hits: one set lookup for all fields.
    words = view.sets[leaf.field]
    if single is not None and single not in words:
        return hits
    for name in names:
        key = (label, name)
        found = cache.get(key)
        if found is None:
            ft = view.fields[name]
            if single is not None:
                if single not in view.sets[name]:  # built once per article and field
                    cache[key] = ()
                    continue
                # One word: look it up in the folded text directly.
                spans = ft.token_spans(single, MAX_TERM_HITS)
                found = tuple([Hit(label, name, s, e) for s, e in spans])
            elif pattern.rx is None and pattern.search not in ft.joined:
                found = ()  # most (term, field) pairs: one C-speed test, nothing to map
            else:
                occurrences = islice(pattern.occurrences(ft), MAX_TERM_HITS)
                found = tuple([Hit(label, name, *ft.display_span(s, e)) for s, e in occurrences])
            cache[key] = found
        hits.extend(found)
    return hits


def collect_hits(plan: Plan, view: View) -> list[Hit]:
    """Every place a positive term of ``plan`` occurs (terms under NOT are skipped)."""
    if isinstance(plan, TermLeaf):
        return _term_hits(plan, view, fields_of(plan.field))
    if isinstance(plan, RegexLeaf):
        hits = []
        for name in fields_of(plan.field):
            norm, offmap = view.doc.regex_text(name)
            for m in plan.rx.finditer(norm):
                if m.end() > m.start():
                    s, e = to_original(offmap, m.start(), m.end())
                    hits.append(Hit(plan.label, name, s, e))
        return hits
    if isinstance(plan, NearLeaf):
        return _near_hits(plan, view)
    if isinstance(plan, NotPlan):
        return []
    return [h for c in plan.children for h in collect_hits(c, view)]


def _near_hits(plan: NearLeaf, view: View) -> list[Hit]:
    hits = []
    for name in plan.fields:
        ft = view.fields[name]
        pairs = near_pairs(
            occurrences(plan.left, view, name),
            occurrences(plan.right, view, name),
            plan.distance,
        )
        for occ in {o for pair in pairs for o in pair}:
            s, e = ft.display_span(occ[2], occ[3])
            hits.append(Hit(plan.label, name, s, e))
    return hits


_SLOTS: Final = {name: Explanation.__dict__[name] for name in ("hits", "snippet", "highlights")}


class LazyExplanation(Explanation):
    """An ``Explanation`` worked out on first access.

    ``match()`` returns one per match; most are never read (the pipeline drops
    a match of a story it has already alerted on), so hit offsets and snippets
    are computed only for the ones that are. It behaves as a plain
    ``Explanation``: equal to one with the same values, and pickled or copied
    as one. While not yet computed it keeps the article's analysis alive.
    """

    __slots__ = ("_arg", "_make")

    def __init__(
        self, make: Callable[[Any], Explanation] | None = None, arg: Any = None, **values: Any
    ) -> None:
        if make is None:  # dataclasses.replace() passes the field values
            done = Explanation(**values)
            make = lambda _: done  # noqa: E731
        object.__setattr__(self, "_make", make)
        object.__setattr__(self, "_arg", arg)

    def _value(self, name: str) -> Any:
        make = object.__getattribute__(self, "_make")
        if make is not None:
            done = make(object.__getattribute__(self, "_arg"))
            for slot, descriptor in _SLOTS.items():
                descriptor.__set__(self, getattr(done, slot))
            object.__setattr__(self, "_make", None)
            object.__setattr__(self, "_arg", None)  # let the article's analysis go
        return _SLOTS[name].__get__(self)

    @property
    def hits(self) -> tuple[Hit, ...]:
        return cast(tuple[Hit, ...], self._value("hits"))

    @property
    def snippet(self) -> str:
        return cast(str, self._value("snippet"))

    @property
    def highlights(self) -> tuple[tuple[int, int], ...]:
        return cast(tuple[tuple[int, int], ...], self._value("highlights"))

    def plain(self) -> Explanation:
        return Explanation(hits=self.hits, snippet=self.snippet, highlights=self.highlights)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Explanation):
            mine = (self.hits, self.snippet, self.highlights)
            return mine == (other.hits, other.snippet, other.highlights)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.plain())

    def __repr__(self) -> str:
        return repr(self.plain())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Explanation, (self.hits, self.snippet, self.highlights))


def explanation(plan: Plan, view: View) -> Explanation:
    hits = _tidy(collect_hits(plan, view))
    snippet, highlights = make_snippet(view, hits)
    return Explanation(hits=tuple(hits), snippet=snippet, highlights=highlights)


_FIELD_ORDER: Final = {name: i for i, name in enumerate(FIELDS)}


def _tidy(hits: list[Hit]) -> list[Hit]:
    order = _FIELD_ORDER
    seen: set[tuple[str, int, int]] = set()
    out = []
    for hit in sorted(hits, key=lambda h: (order[h.field], h.start, -h.end)):
        span = (hit.field, hit.start, hit.end)
        if span not in seen:
            seen.add(span)
            out.append(hit)
    return out[:MAX_HITS]


def snippet_window(text: str, anchor: Hit | None) -> tuple[int, int]:
    """The [start, end) of ``text`` a snippet shows: about ``SNIPPET_CHARS``
    from a little before ``anchor``, snapped to spaces, whitespace trimmed."""
    start = 0 if anchor is None else max(0, anchor.start - SNIPPET_BEFORE)
    if start > 0:
        space = text.find(" ", start, min(start + SNIPPET_SNAP, anchor.start if anchor else start))
        start = space + 1 if space >= 0 else start
    end = min(len(text), start + SNIPPET_CHARS)
    if anchor is not None:
        end = max(end, anchor.end)
    if end < len(text):
        space = text.rfind(" ", max(start, end - SNIPPET_SNAP), end)
        if space > (anchor.end if anchor else start):
            end = space
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def make_snippet(view: View, hits: list[Hit]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """About ``SNIPPET_CHARS`` of display text around the first hit, whitespace collapsed."""
    with_hits = {h.field for h in hits}
    name = next((f for f in SNIPPET_FIELDS if f in with_hits), "")
    if not name:
        name = next((f for f in SNIPPET_FIELDS if view.fields[f].display.strip()), "content")
    text = view.fields[name].display
    own = [h for h in hits if h.field == name]
    start, end = snippet_window(text, own[0] if own else None)
    window = text[start:end]
    lead = ELLIPSIS if start > 0 else ""
    tail = ELLIPSIS if end < len(text) else ""
    # Every whitespace run becomes one space. The window has no whitespace at
    # either end, so that is " ".join(window.split()), in C. If it keeps the
    # length, no run was longer than one character and offsets only move by
    # a constant (the usual case).
    collapsed = " ".join(window.split())
    if len(collapsed) == len(window):
        shift = len(lead) - start
        spans = tuple(
            (h.start + shift, h.end + shift) for h in own if h.start >= start and h.end <= end
        )
        return lead + collapsed + tail, spans

    # Whitespace runs were collapsed: map each highlighted offset k of the
    # window on its own. Every run wholly before k became one space; inside a
    # run (a regex hit may end there) offsets move along with it.
    def where(k: int) -> int:
        before = window[:k].rstrip()
        n = len(" ".join(before.split()))
        gap = k - len(before)  # whitespace just before k
        if gap == 0:
            return n
        return n + gap if window[k : k + 1].isspace() else n + 1

    lead_len = len(lead)
    spans_list = []
    for h in own:
        if h.start >= start and h.end <= end:
            spans_list.append((where(h.start - start) + lead_len, where(h.end - start) + lead_len))
    return lead + collapsed + tail, tuple(spans_list)


def miss_reason(plan: Plan, view: View) -> str:
    """Name the clause that made ``plan`` fail on ``view``."""
    if isinstance(plan, AndPlan):
        for child in plan.children:
            if not predicate(child)(view):
                return miss_reason(child, view)
        return f"no match for {plan.label}"  # pragma: no cover - an AND fails in a child
    if isinstance(plan, OrPlan):
        return "missing all of: " + ", ".join(c.label for c in plan.children)
    if isinstance(plan, NotPlan):
        found = dict.fromkeys(h.field for h in collect_hits(plan.child, view))
        where = f" (found in {', '.join(found)})" if found else ""
        return f"excluded by NOT {plan.child.label}{where}"
    if isinstance(plan, NearLeaf):
        for side in (plan.left, plan.right):
            if not any(predicate(leaf)(view) for leaf in side):
                return "missing " + " OR ".join(leaf.label for leaf in side)
        return f"not within {plan.distance} words: {plan.label}"
    if isinstance(plan, RegexLeaf):
        return f"no match for {plan.label}"
    return f"missing {plan.label}"

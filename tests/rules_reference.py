"""A plain reference evaluator for watch rules, to check the index against.

Rule by rule, field by field, over explicit token lists built one character
at a time: no presearch, no joined strings, no caches. It shares only the
parser and the per-character folding with the engine (both tested on their
own) and spells out the matching rules of docs/rules.md directly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newswatch.model import Article
from newswatch.rules import RuleSpec
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
    parse_entry,
    parse_query,
)
from newswatch.rules.text import CJK, HANGUL, NONE, SEA, char_class, fold_text

DEFAULT = ("title", "summary", "content")


@dataclass(frozen=True)
class Tok:
    text: str
    cls: int
    start: int  # in the folded value
    end: int


def tokens_of(text: str, casefold: bool) -> list[Tok]:
    """Maximal runs of characters of one class."""
    norm = fold_text(text, casefold)
    out: list[Tok] = []
    i = 0
    while i < len(norm):
        cls = char_class(norm[i])
        if cls == NONE:
            i += 1
            continue
        j = i
        while j < len(norm) and char_class(norm[j]) == cls:
            j += 1
        out.append(Tok(norm[i:j], cls, i, j))
        i = j
    return out


def query_tokens(node: Word | Phrase, casefold: bool) -> list[tuple[str, str]]:
    """(token, kind): E exact, P prefix, H Hangul (starts with), S substring."""
    toks = tokens_of(node.text, casefold)
    norm = fold_text(node.text, casefold)
    merged: list[Tok] = []
    for t in toks:
        prev = merged[-1] if merged else None
        if (
            isinstance(node, Phrase)
            and prev is not None
            and prev.cls == CJK == t.cls
            and norm[prev.end : t.start].isspace()
        ):
            merged[-1] = Tok(prev.text + t.text, CJK, prev.start, t.end)
        else:
            merged.append(t)
    out = []
    for t in merged:
        kind = "H" if t.cls == HANGUL else "S" if t.cls in (CJK, SEA) else "E"
        out.append((t.text, kind))
    if isinstance(node, Word) and node.prefix and out[-1][1] == "E":
        out[-1] = (out[-1][0], "P")
    return out


Occ = tuple[int, int, int, int]  # first token, last token, char start, char end


def occurrences(q: list[tuple[str, str]], toks: list[Tok]) -> list[Occ]:
    n = len(q)
    out: list[Occ] = []
    for i in range(len(toks) - n + 1):
        if n == 1 and q[0][1] == "S":
            text, tok = q[0][0], toks[i]
            out.extend(
                (i, i, tok.start + k, tok.start + k + len(text))
                for k in range(len(tok.text) - len(text) + 1)
                if tok.text[k : k + len(text)] == text
            )
            continue
        ok = True
        for k, (text, kind) in enumerate(q):
            word = toks[i + k].text
            if kind == "E":
                ok = word == text
            elif kind in ("P", "H"):
                ok = word.startswith(text)
            elif k == 0:
                ok = word.endswith(text)
            elif k == n - 1:
                ok = word.startswith(text)
            else:
                ok = word == text
            if not ok:
                break
        if ok:
            first, last = toks[i], toks[i + n - 1]
            start = first.end - len(q[0][0]) if q[0][1] == "S" else first.start
            end = last.end if q[-1][1] == "E" else last.start + len(q[-1][0])
            out.append((i, i + n - 1, start, end))
    return out


def field_values(article: Article, name: str) -> list[str]:
    values = {
        "title": [article.title],
        "summary": [article.summary],
        "content": [article.content],
        "author": [article.author],
        "source": [article.source, *article.tags],
        "url": [article.canonical_url]
        + ([article.link] if article.link and article.link != article.canonical_url else []),
        "category": list(article.categories),
    }[name]
    return [v for v in values if v]


class Reference:
    def __init__(self, aliases: Mapping[str, Sequence[str]] | None = None) -> None:
        self.aliases = {k: list(v) for k, v in (aliases or {}).items()}

    def rule_node(self, spec: RuleSpec) -> Node:
        parts: list[Node] = []
        if spec.query and spec.query.strip():
            parts.append(parse_query(spec.query))
        parts.extend(parse_entry(e) for e in spec.all)
        if spec.any:
            parts.append(Or(tuple(parse_entry(e) for e in spec.any)))
        parts.extend(Not(parse_entry(e)) for e in spec.none)
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def matches(self, specs: Sequence[RuleSpec], article: Article) -> list[str]:
        return [s.name for s in specs if self.match(s, article)]

    def match(self, spec: RuleSpec, article: Article) -> bool:
        if spec.scope:
            keys = {article.feed_key.casefold(), article.source.casefold()}
            keys |= {"tag:" + t.casefold() for t in article.tags}
            if not keys & {s.casefold() for s in spec.scope}:
                return False
        return self.eval(self.rule_node(spec), article, None, not spec.case_sensitive)

    def expand(self, node: Node) -> Node:
        if isinstance(node, Alias):
            return Or(tuple(self.expand(parse_entry(e)) for e in self.aliases[node.name]))
        return node

    def eval(self, node: Node, article: Article, fld: str | None, casefold: bool) -> bool:
        node = self.expand(node)
        names = DEFAULT if fld is None else (fld,)
        if isinstance(node, Word | Phrase):
            q = query_tokens(node, casefold)
            return any(
                occurrences(q, tokens_of(v, casefold))
                for n in names
                for v in field_values(article, n)
            )
        if isinstance(node, Regex):
            flags = re.IGNORECASE if node.ignore_case or casefold else 0
            return any(
                re.search(
                    node.pattern, fold_text(", ".join(field_values(article, n)), False), flags
                )
                for n in names
            )
        if isinstance(node, Field):
            return self.eval(node.child, article, node.name, casefold)
        if isinstance(node, Not):
            return not self.eval(node.child, article, fld, casefold)
        if isinstance(node, And):
            return all(self.eval(c, article, fld, casefold) for c in node.children)
        if isinstance(node, Or):
            return any(self.eval(c, article, fld, casefold) for c in node.children)
        assert isinstance(node, Near)
        left = self.sides(node.left, fld)
        right = self.sides(node.right, fld)
        for name in dict.fromkeys([n for _, n in left + right]):
            for value in field_values(article, name):
                toks = tokens_of(value, casefold)
                lo = [o for q, n in left if n == name for o in occurrences(q_(q, casefold), toks)]
                ro = [o for q, n in right if n == name for o in occurrences(q_(q, casefold), toks)]
                if any(near(a, b, node.distance) for a in lo for b in ro):
                    return True
        return False

    def sides(self, node: Node, fld: str | None) -> list[tuple[Word | Phrase, str]]:
        """The alternatives of a NEAR operand, each with one field it looks in."""
        node = self.expand(node)
        if isinstance(node, Word | Phrase):
            return [(node, n) for n in (DEFAULT if fld is None else (fld,))]
        if isinstance(node, Field):
            return self.sides(node.child, node.name)
        assert isinstance(node, Or)
        return [s for c in node.children for s in self.sides(c, fld)]


def q_(node: Word | Phrase, casefold: bool) -> list[tuple[str, str]]:
    return query_tokens(node, casefold)


def near(a: Occ, b: Occ, distance: int) -> bool:
    if a[3] <= b[2]:
        return b[0] - a[1] - 1 <= distance
    if b[3] <= a[2]:
        return a[0] - b[1] - 1 <= distance
    return False  # overlapping: the same words cannot be both sides

"""The watch-rule query language: lexer, recursive-descent parser, AST.

Grammar (precedence NEAR > NOT > AND > OR; AND is implied between terms)::

    query   := or EOF
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*
    unary   := ("NOT" | "-") unary | near
    near    := primary ["NEAR/" n primary]
    primary := FIELD ":" primary | "(" or ")" | WORD | WORD"*" | "phrase" | /regex/[i] | @alias

The AST is made of frozen dataclasses (``pos`` is the 0-based offset in the
query text, kept for error carets and left out of equality):

- ``Word(text, prefix)``: a bare word as typed (``prefix``: it ended in ``*``).
  A word that folds to several tokens ("U.S.", "Byung-se") is matched like a
  phrase of them.
- ``Phrase(text)``: the text between double quotes.
- ``Regex(pattern, ignore_case)``: ``/pattern/`` or ``/pattern/i``.
- ``Alias(name)``: ``@name``, replaced by an OR of its entries when compiled.
- ``Near(left, right, distance)``: at most ``distance`` words between the two,
  either order; operands are words, phrases, aliases or OR-groups of them.
- ``Field(name, child)``: ``title:word`` or ``title:(group)``.
- ``Not(child)``, ``And(children)``, ``Or(children)``.

``describe(node)`` prints the canonical query: ``parse_query(describe(n)) == n``
for any parsed ``n`` (nested ANDs and ORs are flattened when parsed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from newswatch.rules.errors import QueryError
from newswatch.rules.lexer import DEFAULT_FIELDS as DEFAULT_FIELDS
from newswatch.rules.lexer import FIELDS as FIELDS
from newswatch.rules.lexer import MAX_NEAR as MAX_NEAR
from newswatch.rules.lexer import MIN_PREFIX as MIN_PREFIX
from newswatch.rules.lexer import Tok, lex


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    prefix: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Phrase:
    text: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Regex:
    pattern: str
    ignore_case: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Alias:
    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Near:
    left: Node
    right: Node
    distance: int
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    child: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


Node = Word | Phrase | Regex | Alias | Near | Field | Not | And | Or


def and_(nodes: list[Node]) -> Node:
    """AND of ``nodes``, flattened (one node stays itself)."""
    flat: list[Node] = []
    for n in nodes:
        flat.extend(n.children if isinstance(n, And) else (n,))
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def or_(nodes: list[Node]) -> Node:
    flat: list[Node] = []
    for n in nodes:
        flat.extend(n.children if isinstance(n, Or) else (n,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


def is_positional(node: Node) -> bool:
    """Whether ``node`` has word positions, so it can be a NEAR operand."""
    if isinstance(node, Word | Phrase | Alias):
        return True
    if isinstance(node, Field):
        return is_positional(node.child)
    if isinstance(node, Or):
        return all(is_positional(c) for c in node.children)
    return False


def describe(node: Node) -> str:
    """The canonical query text for ``node``."""
    if isinstance(node, Word):
        return node.text + ("*" if node.prefix else "")
    if isinstance(node, Phrase):
        return f'"{node.text}"'
    if isinstance(node, Regex):
        return f"/{node.pattern}/" + ("i" if node.ignore_case else "")
    if isinstance(node, Alias):
        return f"@{node.name}"
    if isinstance(node, Near):
        return f"{_operand(node.left)} NEAR/{node.distance} {_operand(node.right)}"
    if isinstance(node, Field):
        return f"{node.name}:{_operand(node.child)}"
    if isinstance(node, Not):
        return f"NOT {_operand(node.child)}"
    if isinstance(node, And):
        return " AND ".join(_group(c, Or) for c in node.children)
    return " OR ".join(_group(c, Or) for c in node.children)


def _group(node: Node, loose: type) -> str:
    return f"({describe(node)})" if isinstance(node, loose) else describe(node)


def _operand(node: Node) -> str:
    simple = isinstance(node, Word | Phrase | Regex | Alias | Field)
    return describe(node) if simple else f"({describe(node)})"


# --- parser --------------------------------------------------------------

_PRIMARY_START: Final = frozenset({"FIELD", "(", "WORD", "PHRASE", "REGEX", "ALIAS"})
_UNARY_START: Final = _PRIMARY_START | {"NOT", "-"}
_CLOSERS: Final = frozenset({"EOF", ")", "AND", "OR"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = lex(text)
        self.i = 0

    def peek(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def error(self, message: str, pos: int) -> QueryError:
        return QueryError(message, text=self.text, position=pos)

    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise self.error("empty query", 0)
        node = self.parse_or()
        tok = self.peek()
        if tok.kind == ")":
            raise self.error("unbalanced ')': no '(' before it", tok.pos)
        if tok.kind != "EOF":  # pragma: no cover - every other token starts a term
            raise self.error("unexpected text", tok.pos)
        return node

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek().kind == "OR":
            op = self.next()
            if self.peek().kind in _CLOSERS:
                raise self.error("OR needs a term after it", op.pos)
            children.append(self.parse_and())
        return or_(children)

    def parse_and(self) -> Node:
        tok = self.peek()
        if tok.kind in ("AND", "OR"):
            raise self.error(f"{tok.kind} needs a term before it", tok.pos)
        children = [self.parse_unary()]
        while True:
            tok = self.peek()
            if tok.kind == "AND":
                self.next()
                if self.peek().kind in _CLOSERS:
                    raise self.error("AND needs a term after it", tok.pos)
            elif tok.kind not in _UNARY_START:
                break
            children.append(self.parse_unary())
        return and_(children)

    def parse_unary(self) -> Node:
        tok = self.peek()
        if tok.kind in ("NOT", "-"):
            self.next()
            if self.peek().kind in _CLOSERS:
                raise self.error(f"{tok.kind} needs a term after it", tok.pos)
            return Not(self.parse_unary())
        return self.parse_near()

    def parse_near(self) -> Node:
        left = self.parse_primary()
        tok = self.peek()
        if tok.kind != "NEAR":
            return left
        self.next()
        word = f"NEAR/{tok.number}"
        if self.peek().kind not in _PRIMARY_START:
            raise self.error(f"{word} needs a word or phrase after it", tok.pos)
        right = self.parse_primary()
        if not (is_positional(left) and is_positional(right)):
            raise self.error(f"{word} works on words, phrases and OR-groups of them", tok.pos)
        if self.peek().kind == "NEAR":
            raise self.error("NEAR cannot be chained; use AND between two NEARs", self.peek().pos)
        return Near(left, right, tok.number, tok.pos)

    def parse_primary(self) -> Node:
        tok = self.next()
        kind = tok.kind
        if kind == "WORD":
            return Word(tok.value, tok.flag, tok.pos)
        if kind == "PHRASE":
            return Phrase(tok.value, tok.pos)
        if kind == "REGEX":
            return Regex(tok.value, tok.flag, tok.pos)
        if kind == "ALIAS":
            return Alias(tok.value, tok.pos)
        if kind == "FIELD":
            if self.peek().kind not in _PRIMARY_START:
                raise self.error(f"expected a word, phrase or group after '{tok.value}:'", tok.pos)
            return Field(tok.value, self.parse_primary(), tok.pos)
        if kind == "(":
            if self.peek().kind == ")":
                raise self.error("empty group ()", tok.pos)
            inner = self.parse_or()
            if self.peek().kind != ")":
                raise self.error("unbalanced '(': no ')' after it", tok.pos)
            self.next()
            return inner
        if kind == ")":
            raise self.error("unbalanced ')': no '(' before it", tok.pos)
        if kind == "NEAR":
            raise self.error(f"NEAR/{tok.number} needs a word or phrase before it", tok.pos)
        raise self.error("expected a term", tok.pos)  # pragma: no cover - callers check first


def parse_query(text: str) -> Node:
    """Parse one query; raise ``QueryError`` (without a rule name) if it is bad."""
    return _Parser(text).parse()


def parse_entry(text: str) -> Node:
    """Parse an ``all``/``any``/``none`` item or an alias entry.

    An entry made only of plain words (no operators, quotes, parentheses,
    ``field:``, ``*``, ``-``, ``@`` or ``/regex/``) is one word or an exact
    phrase: ``North Korea`` means ``"North Korea"``. Anything else is a query.
    """
    try:
        toks = lex(text)
    except QueryError:
        return parse_query(text)  # raises the same error, from the parser's view
    words = toks[:-1]
    if words and all(t.kind == "WORD" and not t.flag for t in words):
        if len(words) == 1:
            return Word(words[0].value, False, words[0].pos)
        start = words[0].pos
        return Phrase(text.strip(), start)
    return parse_query(text)

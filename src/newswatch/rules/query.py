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

``describe(node)`` prints the canonical query; ``parse_query(describe(n)) == n``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from newswatch.rules.errors import QueryError
from newswatch.rules.text import tokenize

FIELDS: Final = ("title", "summary", "content", "author", "source", "url", "category")
DEFAULT_FIELDS: Final = ("title", "summary", "content")
MIN_PREFIX: Final = 3  # shorter prefixes match too much to be useful and bloat the index
MAX_NEAR: Final = 200


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


# --- lexer ---------------------------------------------------------------

_QUOTES = str.maketrans(dict.fromkeys("“”„‟″«»", '"'))
_STOP = frozenset(' \t\r\n\f\v()"')
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_NEAR_RE = re.compile(r"NEAR/(\d+)")
_ALIAS_RE = re.compile(r"[\w-]+")


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # ( ) AND OR NOT - NEAR FIELD WORD PHRASE REGEX ALIAS EOF
    pos: int
    value: str = ""
    number: int = 0
    flag: bool = False


def _lex(text: str) -> list[_Tok]:
    src = text.translate(_QUOTES)
    toks: list[_Tok] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(_Tok(ch, i))
            i += 1
        elif ch == '"':
            i = _lex_phrase(src, i, toks)
        elif ch == "/":
            i = _lex_regex(src, i, toks)
        elif ch == "@":
            m = _ALIAS_RE.match(src, i + 1)
            if not m:
                raise QueryError("alias name expected after '@'", text=text, position=i)
            toks.append(_Tok("ALIAS", i, m.group()))
            i = m.end()
        elif ch == "-":
            if i + 1 >= n or src[i + 1] in _STOP and src[i + 1] not in '("':
                raise QueryError(
                    "'-' must be attached to what it excludes, e.g. -sports", text=text, position=i
                )
            toks.append(_Tok("-", i))
            i += 1
        else:
            i = _lex_word(src, i, toks)
    toks.append(_Tok("EOF", n))
    return toks


def _lex_phrase(src: str, i: int, toks: list[_Tok]) -> int:
    end = src.find('"', i + 1)
    if end < 0:
        raise QueryError('unbalanced quote: no closing "', text=src, position=i)
    body = src[i + 1 : end]
    if not body.strip():
        raise QueryError("empty phrase", text=src, position=i)
    if not tokenize(body):
        raise QueryError("phrase has no letters or digits to match", text=src, position=i)
    if end + 1 < len(src) and src[end + 1] == "*":
        raise QueryError("'*' works on words, not on phrases", text=src, position=end + 1)
    toks.append(_Tok("PHRASE", i, body))
    return end + 1


def _lex_regex(src: str, i: int, toks: list[_Tok]) -> int:
    j, n = i + 1, len(src)
    while j < n and src[j] != "/":
        j += 2 if src[j] == "\\" else 1
    if j >= n:
        raise QueryError("unterminated regex: no closing /", text=src, position=i)
    pattern = src[i + 1 : j]
    if not pattern:
        raise QueryError("empty regex //", text=src, position=i)
    k = j + 1
    while k < n and src[k].isalpha():
        k += 1
    flags = src[j + 1 : k]
    if flags not in ("", "i"):
        raise QueryError(
            f"unknown regex flag {flags!r} (only /i is supported)", text=src, position=j + 1
        )
    try:
        re.compile(pattern, re.IGNORECASE if flags else 0)
    except re.error as e:
        pos = i + 1 + e.pos if e.pos is not None else i
        raise QueryError(f"invalid regex: {e.msg}", text=src, position=pos) from None
    toks.append(_Tok("REGEX", i, pattern, flag=bool(flags)))
    return k


def _lex_word(src: str, i: int, toks: list[_Tok]) -> int:
    n = len(src)
    m = _FIELD_RE.match(src, i)
    if m:
        name = m.group(1)
        after = src[m.end()] if m.end() < n else ""
        if name.lower() in FIELDS:
            if not after or after.isspace() or after == ")":
                raise QueryError(
                    f"nothing after '{name}:' (write {name.lower()}:word, without a space)",
                    text=src,
                    position=i,
                )
            toks.append(_Tok("FIELD", i, name.lower()))
            return m.end()
        if after and not after.isspace() and after != "/":
            raise QueryError(
                f"unknown field {name!r} (fields: {', '.join(FIELDS)}); "
                'put text with a colon in quotes: "a:b"',
                text=src,
                position=i,
            )
    j = i
    while j < n and src[j] not in _STOP:
        j += 1
    word = src[i:j]
    if word in ("AND", "OR", "NOT"):
        toks.append(_Tok(word, i))
        return j
    if word.startswith("NEAR") and (word == "NEAR" or word.startswith("NEAR/")):
        near = _NEAR_RE.fullmatch(word)
        if not near:
            raise QueryError("NEAR needs a distance, e.g. NEAR/5", text=src, position=i)
        distance = int(near.group(1))
        if distance > MAX_NEAR:
            raise QueryError(f"NEAR distance is at most {MAX_NEAR}", text=src, position=i)
        toks.append(_Tok("NEAR", i, number=distance))
        return j
    star = word.find("*")
    if 0 <= star < len(word) - 1:
        raise QueryError("'*' can only end a word (prefix*)", text=src, position=i + star)
    prefix = star == len(word) - 1
    body = word[:-1] if prefix else word
    tokens = tokenize(body)
    if prefix and (not tokens or len(tokens[-1]) < MIN_PREFIX or not body[-1:].isalnum()):
        raise QueryError(
            f"prefix needs at least {MIN_PREFIX} letters before '*'", text=src, position=i
        )
    if not tokens:
        raise QueryError(f"{word!r} has no letters or digits to match", text=src, position=i)
    toks.append(_Tok("WORD", i, body, flag=prefix))
    return j


# --- parser --------------------------------------------------------------

_PRIMARY_START: Final = frozenset({"FIELD", "(", "WORD", "PHRASE", "REGEX", "ALIAS"})
_UNARY_START: Final = _PRIMARY_START | {"NOT", "-"}
_CLOSERS: Final = frozenset({"EOF", ")", "AND", "OR"})


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _lex(text)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
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
        toks = _lex(text)
    except QueryError:
        return parse_query(text)  # raises the same error, from the parser's view
    words = toks[:-1]
    if words and all(t.kind == "WORD" and not t.flag for t in words):
        if len(words) == 1:
            return Word(words[0].value, False, words[0].pos)
        start = words[0].pos
        return Phrase(text.strip(), start)
    return parse_query(text)

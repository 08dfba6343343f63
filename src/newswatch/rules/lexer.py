"""The query lexer: characters to tokens, with positions for error carets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from newswatch.rules.errors import QueryError
from newswatch.rules.text import tokenize

FIELDS: Final = ("title", "summary", "content", "author", "source", "url", "category")
DEFAULT_FIELDS: Final = ("title", "summary", "content")
MIN_PREFIX: Final = 3  # shorter prefixes match too much to be useful and bloat the index
MAX_NEAR: Final = 200

_QUOTES = str.maketrans(dict.fromkeys("“”„‟″«»", '"'))
_STOP = frozenset(' \t\r\n\f\v()"')
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_NEAR_RE = re.compile(r"NEAR/(\d+)")
_ALIAS_RE = re.compile(r"[\w-]+")


@dataclass(frozen=True, slots=True)
class Tok:
    kind: str  # ( ) AND OR NOT - NEAR FIELD WORD PHRASE REGEX ALIAS EOF
    pos: int
    value: str = ""
    number: int = 0
    flag: bool = False


def lex(text: str) -> list[Tok]:
    src = text.translate(_QUOTES)
    toks: list[Tok] = []
    i, n = 0, len(src)
    while i < n:
        ch = src[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            toks.append(Tok(ch, i))
            i += 1
        elif ch == '"':
            i = _lex_phrase(src, i, toks)
        elif ch == "/":
            i = _lex_regex(src, i, toks)
        elif ch == "@":
            m = _ALIAS_RE.match(src, i + 1)
            if not m:
                raise QueryError("alias name expected after '@'", text=text, position=i)
            toks.append(Tok("ALIAS", i, m.group()))
            i = m.end()
        elif ch == "-":
            if i + 1 >= n or (src[i + 1] in _STOP and src[i + 1] not in '("'):
                raise QueryError(
                    "'-' must be attached to what it excludes, e.g. -sports", text=text, position=i
                )
            toks.append(Tok("-", i))
            i += 1
        else:
            i = _lex_word(src, i, toks)
    toks.append(Tok("EOF", n))
    return toks


def _lex_phrase(src: str, i: int, toks: list[Tok]) -> int:
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
    toks.append(Tok("PHRASE", i, body))
    return end + 1


def _lex_regex(src: str, i: int, toks: list[Tok]) -> int:
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
    toks.append(Tok("REGEX", i, pattern, flag=bool(flags)))
    return k


def _lex_word(src: str, i: int, toks: list[Tok]) -> int:
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
            toks.append(Tok("FIELD", i, name.lower()))
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
        toks.append(Tok(word, i))
        return j
    if word.startswith("NEAR") and (word == "NEAR" or word.startswith("NEAR/")):
        near = _NEAR_RE.fullmatch(word)
        if not near:
            raise QueryError("NEAR needs a distance, e.g. NEAR/5", text=src, position=i)
        distance = int(near.group(1))
        if distance > MAX_NEAR:
            raise QueryError(f"NEAR distance is at most {MAX_NEAR}", text=src, position=i)
        toks.append(Tok("NEAR", i, number=distance))
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
    toks.append(Tok("WORD", i, body, flag=prefix))
    return j

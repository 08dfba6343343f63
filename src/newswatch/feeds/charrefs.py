"""Repair numeric character references that no XML parser accepts.

A feed that writes an emoji the UTF-16 way (``&#xD83D;&#xDE00;``), a lone
surrogate, or a number beyond U+10FFFF is not well-formed XML. expat rejects
it, feedparser falls back to its loose parser, and that parser raises on
``chr()`` or on encoding a surrogate, so one such entry used to take the
whole feed down (issue 7.3). Control characters that XML 1.0 forbids
(``&#1;``) also push feedparser onto the slow loose parser for the whole
document.

``repair_charrefs`` rewrites only those references, before parsing:

- a high-surrogate reference followed at once by a low-surrogate one becomes
  the reference of the code point they spell (``&#x1F600;``);
- any other surrogate, a number beyond U+10FFFF, and U+FFFE/U+FFFF become
  ``&#xFFFD;`` (the replacement character);
- C0 control characters that XML forbids become ``&#x20;``: normalization
  turns them into a space anyway.

A reference is always replaced by a reference, never by the character it
names. Inside CDATA a reference is literal text, which newswatch later reads
as HTML (where it does mean the character): the repaired text keeps that
meaning, while a raw character could not be written in every encoding.

The rewrite is done on the bytes when the document's encoding writes ASCII
as ASCII and never uses ASCII bytes for anything else (UTF-8, Latin-1,
windows-125x, EUC-KR, Shift_JIS, GBK, Big5: their multi-byte sequences do
not contain ``&`` or ``#``). UTF-16/32 and stateful encodings (ISO-2022-*,
UTF-7, HZ) are decoded, repaired and encoded again with the same codec, and
only when something needed repair.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import AnyStr, Final

__all__ = ["repair_charrefs", "repair_charrefs_text"]

_MAX_CODE_POINT: Final = 0x10FFFF
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)
_NONCHARACTERS: Final = frozenset({0xFFFE, 0xFFFF})
# C0 controls allowed in XML 1.0: tab, line feed, carriage return.
_XML_CONTROLS_OK: Final = frozenset({0x09, 0x0A, 0x0D})
_REPLACEMENT: Final = "&#xFFFD;"
# Leading zeros are stripped by the regex; more digits than this is beyond
# U+10FFFF in either base (decimal 1114111 has 7).
_MAX_DIGITS: Final = 8
_SPACE: Final = "&#x20;"

# Only references that can need repair are looked at in Python; the vast
# majority (&#8217;, &#x2019;, &#38;) are skipped by the regex engine alone.
# Candidates: hex with 1-2 digits (controls), starting with D and 4 digits
# (surrogates), 4 digits starting with F (U+FFFE/F), 6+ digits (out of
# range); decimal with 1-2 digits, 5 digits from 55000 (surrogates: 55296-
# 57343; 65534-5), or 6+ digits. Leading zeros are allowed anywhere.
_CANDIDATE = (
    r"&#(?:[xX]0*([0-9a-fA-F]{1,2}|[dDfF][0-9a-fA-F]{3}|[0-9a-fA-F]{6,})"
    r"|0*([0-9]{1,2}|5[5-9][0-9]{3}|6[0-9]{4}|[0-9]{6,}));"
)
_CANDIDATE_STR: Final = re.compile(_CANDIDATE)
_CANDIDATE_BYTES: Final = re.compile(_CANDIDATE.encode())

# The first bytes of a document tell UTF-16/32 apart (XML 1.0, appendix F).
_WIDE_SIGNATURES: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WIDE_SNIFF: Final = (
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00?\x00", "utf-16-le"),
    (b"\x00<\x00?", "utf-16-be"),
)
# Encodings (by codecs' normalized name) whose ASCII bytes can mean other
# characters, depending on a shift state.
_STATEFUL: Final = frozenset(
    {
        "iso2022_jp",
        "iso2022_jp_1",
        "iso2022_jp_2",
        "iso2022_jp_2004",
        "iso2022_jp_3",
        "iso2022_jp_ext",
        "iso2022_kr",
        "utf_7",
        "hz",
    }
)
# The XML declaration sits in the first bytes; 200 covers any sane one.
_DECLARATION_BYTES: Final = 200
_DECLARED_RE: Final = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_CHARSET_RE: Final = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_PROBE: Final = "&#x;0123456789abcdefABCDEFxX"


def _fixed(value: int, next_value: int | None) -> tuple[str | None, bool]:
    """(replacement or None to keep, whether the next reference is consumed)."""
    if value in _HIGH:
        if next_value is not None and next_value in _LOW:
            joined = 0x10000 + ((value - 0xD800) << 10) + (next_value - 0xDC00)
            return f"&#x{joined:X};", True
        return _REPLACEMENT, False
    if value in _LOW or value > _MAX_CODE_POINT or value in _NONCHARACTERS:
        return _REPLACEMENT, False
    if value < 0x20 and value not in _XML_CONTROLS_OK:
        return _SPACE, False
    return None, False


def _value(m: re.Match[AnyStr]) -> int:
    hex_digits, dec_digits = m.group(1), m.group(2)
    digits = hex_digits if hex_digits is not None else dec_digits
    if len(digits) > _MAX_DIGITS:  # out of range; int() of 5,000 digits even raises
        return _MAX_CODE_POINT + 1
    return int(digits, 16 if hex_digits is not None else 10)


def _repair(
    doc: AnyStr, pattern: re.Pattern[AnyStr], encode: Callable[[str], AnyStr]
) -> AnyStr | None:
    """``doc`` with bad references rewritten, or None when none needed it."""
    m = pattern.search(doc)
    if m is None:
        return None
    parts: list[AnyStr] = []
    last = 0
    changed = False
    while m is not None:
        nxt = pattern.match(doc, m.end())
        replacement, consumed = _fixed(_value(m), _value(nxt) if nxt is not None else None)
        end = m.end()
        if consumed and nxt is not None:
            end = nxt.end()
        if replacement is not None:
            parts.append(doc[last : m.start()])
            parts.append(encode(replacement))
            last = end
            changed = True
        m = pattern.search(doc, end)
    if not changed:
        return None
    parts.append(doc[last:])
    return doc[:0].join(parts)


def repair_charrefs_text(text: str) -> str:
    """``text`` (a decoded document) with bad character references repaired."""
    repaired = _repair(text, _CANDIDATE_STR, str)
    return text if repaired is None else repaired


def _codec_name(label: str) -> str | None:
    try:
        return codecs.lookup(label).name.replace("-", "_")
    except LookupError:
        return None


def _declared_codec(body: bytes, content_type: str | None) -> str | None:
    """The encoding the document says it uses (HTTP header first, as RFC 7303)."""
    if content_type:
        charset = _CHARSET_RE.search(content_type)
        if charset:
            return _codec_name(charset.group(1))
    declared = _DECLARED_RE.match(body[:_DECLARATION_BYTES])
    return _codec_name(declared.group(1).decode("ascii")) if declared else None


def _ascii_safe(codec: str) -> bool:
    if codec in _STATEFUL:
        return False
    try:
        return _PROBE.encode(codec) == _PROBE.encode("ascii")
    except (UnicodeError, LookupError):
        return False


def _recode(body: bytes, codec: str, bom: bytes) -> bytes:
    try:
        text = body[len(bom) :].decode(codec)
    except (UnicodeError, LookupError):
        return body  # not what it claims to be: let the parser report it
    repaired = _repair(text, _CANDIDATE_STR, str)
    if repaired is None:
        return body
    try:
        return bom + repaired.encode(codec)
    except UnicodeError:
        return body


def repair_charrefs(body: bytes, content_type: str | None = None) -> bytes:
    """``body`` with bad numeric character references repaired (see module doc).

    Returns ``body`` itself (the same object) when nothing needed repair.
    ``content_type`` is the HTTP header, whose charset names the encoding.
    """
    for signature, wide in _WIDE_SIGNATURES:
        if body.startswith(signature):
            return _recode(body, wide, signature)
    for signature, wide in _WIDE_SNIFF:
        if body.startswith(signature):
            return _recode(body, wide, b"")
    declared = _declared_codec(body, content_type)
    if declared is not None and not _ascii_safe(declared):
        return _recode(body, declared, b"")
    repaired = _repair(body, _CANDIDATE_BYTES, lambda s: s.encode("ascii"))
    return body if repaired is None else repaired

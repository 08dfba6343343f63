"""Telegram's ``parse_mode: HTML``, as the Bot API server parses it.

A line-by-line port of ``parse_html`` and ``decode_html_entity`` in TDLib
(tdlib/td, td/telegram/MessageEntity.cpp, HEAD of July 2026), which the
Bot API server (tdlib/telegram-bot-api) runs on every ``sendMessage`` with
``parse_mode=HTML``. The error texts and byte offsets are TDLib's; the Bot
API prefixes "Can't parse entities: " and lower-cases the first letter, so
a caller sees ``Bad Request: can't parse entities: Unsupported start tag
"script" at byte offset 12``.

What TDLib accepts, and a stricter reading would not:

- only ``a b strong i em u ins s strike del span tg-spoiler tg-emoji
  tg-time pre code blockquote`` open (``span`` only with class
  ``tg-spoiler``); any other ``<`` starts an unsupported tag (``a < b``
  fails with tag "");
- ``&lt; &gt; &amp; &quot;`` and numeric references decode (the ``;`` is
  optional); any other ``&`` is kept literally, not refused. The parser
  reports each one in ``literal_ampersands`` so a test can still insist on
  escaping;
- attribute values may be quoted, or bare name tokens;
- ``</>`` closes whatever is open.

Offsets and lengths of entities count UTF-16 code units, as the Bot API
documents. Links that TDLib would refuse (``javascript:``...) produce no
entity; ``tg://user?id=N`` produces a ``text_mention`` (it notifies).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

__all__ = ["Entity", "HtmlError", "ParsedText", "fix_text", "parse_html", "utf16_len"]

SUPPORTED_TAGS = frozenset(
    {
        "a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins",
        "tg-spoiler", "tg-emoji", "tg-time", "span", "pre", "code", "blockquote",
    }
)  # fmt: skip
SIMPLE_TYPES = {
    "i": "italic", "em": "italic", "b": "bold", "strong": "bold",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "u": "underline", "ins": "underline", "tg-spoiler": "spoiler",
}  # fmt: skip
# Schemes TDLib keeps in a text link (LinkManager::get_checked_link is far
# more involved; this is the part that matters for hostile feed text).
LINK_SCHEMES = frozenset({"http", "https", "tg", "ton", "ftp", "mailto", ""})
MAX_CODE_POINT = 0x10FFFF
MAX_REFERENCE_LENGTH = 10  # "&#" plus digits, as TDLib bounds it
_SPACE = frozenset(b" \t\r\n\v\0")  # TDLib's is_space counts the terminating NUL
# clean_input_string (td/telegram/misc.cpp) drops these: bidi and line
# separators U+2028-U+202E and three combining "vertical lines".
_DROPPED = frozenset({*map(chr, range(0x2028, 0x202F)), "\u0333", "\u033f", "\u030a", "\r"})


class HtmlError(ValueError):
    """TDLib's parse error; ``str()`` is its exact message."""


@dataclass(frozen=True)
class Entity:
    type: str
    offset: int  # UTF-16 code units
    length: int
    url: str | None = None
    user_id: int | None = None
    language: str | None = None
    custom_emoji_id: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"type": self.type, "offset": self.offset, "length": self.length}
        if self.url is not None:
            out["url"] = self.url
        if self.user_id is not None:
            out["user"] = {"id": self.user_id, "is_bot": False, "first_name": ""}
        if self.language is not None:
            out["language"] = self.language
        if self.custom_emoji_id is not None:
            out["custom_emoji_id"] = self.custom_emoji_id
        return out


@dataclass(frozen=True)
class ParsedText:
    text: str
    entities: tuple[Entity, ...]
    literal_ampersands: tuple[int, ...] = ()  # byte offsets of "&" kept as text
    dropped_links: tuple[str, ...] = field(default=())


@dataclass
class _Open:
    tag: str
    argument: str
    offset: int  # UTF-16 offset where the entity starts
    begin: int  # byte length of the output when it opened


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _decode_entity(text: bytes, pos: int) -> tuple[int, int]:
    """(code point, position after) of the reference at ``pos``; (0, pos) if none."""

    def at(i: int) -> int:
        return text[i] if i < len(text) else 0

    end = pos + 1
    code = 0
    if at(pos + 1) == ord("#"):
        end += 1
        if at(pos + 2) == ord("x"):
            end += 1
            while at(end) and chr(at(end)) in "0123456789abcdefABCDEF":
                code = code * 16 + int(chr(at(end)), 16)
                end += 1
        else:
            while ord("0") <= at(end) <= ord("9"):
                code = code * 10 + at(end) - ord("0")
                end += 1
        if code == 0 or code >= MAX_CODE_POINT or end - pos >= MAX_REFERENCE_LENGTH:
            return 0, pos
    else:
        while chr(at(end)).isascii() and chr(at(end)).isalpha():
            end += 1
        name = text[pos + 1 : end]
        code = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}.get(name, 0)
        if not code:
            return 0, pos
    return code, end + 1 if at(end) == ord(";") else end


def _encode(code: int) -> bytes:
    return chr(code).encode("utf-8", "surrogatepass")


def _lower(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").lower()


def _checked_link(url: str) -> str | None:
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    return url if scheme in LINK_SCHEMES and url.strip() else None


def _user_link(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.scheme.lower() == "tg" and parts.netloc.lower() == "user":
        ids = parse_qs(parts.query).get("id", [""])
        return int(ids[0]) if ids[0].isdigit() else None
    return None


def parse_html(source: str) -> ParsedText:
    """Plain text and entities of ``source``, or HtmlError with TDLib's message."""
    text = source.encode("utf-8")
    size = len(text)

    def at(i: int) -> int:
        return text[i] if i < size else 0

    out = bytearray()
    utf16 = 0
    recheck = False
    opened: list[_Open] = []
    entities: list[Entity] = []
    ampersands: list[int] = []
    dropped: list[str] = []
    i = 0
    while i < size:
        c = text[i]
        if c == ord("&"):
            code, after = _decode_entity(text, i)
            if code:
                utf16 += 1 + (code > 0xFFFF)
                recheck = recheck or 0xD800 <= code <= 0xDFFF  # half a surrogate pair
                out += _encode(code)
                i = after
                continue
            ampersands.append(i)
        if c != ord("<"):
            if c & 0xC0 != 0x80:  # first byte of a character
                utf16 += 1 + (c >= 0xF0)  # four bytes: a surrogate pair in UTF-16
            out.append(c)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != ord("/"):
            while at(i) not in _SPACE and at(i) != ord(">"):
                i += 1
            if at(i) == 0:
                raise HtmlError(f"Unclosed start tag at byte offset {begin}")
            tag = _lower(text[begin + 1 : i])
            if tag not in SUPPORTED_TAGS:
                raise HtmlError(f'Unsupported start tag "{tag}" at byte offset {begin}')
            argument = ""
            while at(i) != ord(">"):
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) == ord(">"):
                    break
                name_begin = i
                while at(i) not in _SPACE and at(i) not in b"=>/\"'":
                    i += 1
                name = text[name_begin:i]
                if not name:
                    raise HtmlError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {begin}'
                    )
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) != ord("="):
                    if at(i) == 0:
                        raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                    if tag == "blockquote" and name == b"expandable":
                        argument = "1"
                    continue
                i += 1
                while at(i) != 0 and at(i) in _SPACE:
                    i += 1
                if at(i) == 0:
                    raise HtmlError(f'Unclosed start tag "{tag}" at byte offset {begin}')
                if at(i) not in b"'\"":
                    token_begin = i  # a bare name token: letters, digits, "." and "-"
                    while (
                        at(i) and chr(at(i)).isascii() and (chr(at(i)).isalnum() or at(i) in b".-")
                    ):
                        i += 1
                    value = _lower(text[token_begin:i])
                    if at(i) not in _SPACE and at(i) != ord(">"):
                        raise HtmlError(
                            f"Unexpected end of name token at byte offset {token_begin}"
                        )
                else:
                    quote = at(i)
                    i += 1
                    raw = bytearray()
                    while at(i) != quote and at(i) != 0:
                        if at(i) == ord("&"):
                            code, after = _decode_entity(text, i)
                            if code:
                                raw += _encode(code)
                                i = after
                                continue
                        raw.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = raw.decode("utf-8", "surrogatepass")
                if at(i) == 0:
                    raise HtmlError(f"Unclosed start tag at byte offset {begin}")
                if tag == "a" and name == b"href":
                    argument = value
                elif tag == "code" and name == b"class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and name == b"class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif (tag == "tg-emoji" and name == b"emoji-id") or (
                    tag == "tg-time" and name == b"format"
                ):
                    argument = value
                elif tag == "blockquote" and name == b"expandable":
                    argument = "1"
            if tag == "span" and argument != "spoiler":
                raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
            opened.append(_Open(tag, argument, utf16, len(out)))
        else:
            if not opened:
                raise HtmlError(f"Unexpected end tag at byte offset {begin}")
            while at(i) not in _SPACE and at(i) != ord(">"):
                i += 1
            end_tag = _lower(text[begin + 2 : i])
            while at(i) != 0 and at(i) in _SPACE:
                i += 1
            if at(i) != ord(">"):
                raise HtmlError(f"Unclosed end tag at byte offset {begin}")
            top = opened[-1]
            if end_tag and end_tag != top.tag:
                raise HtmlError(
                    f'Unmatched end tag at byte offset {begin}, expected "</{top.tag}>", '
                    f'found "</{end_tag}>"'
                )
            if utf16 > top.offset:
                _close(top, utf16 - top.offset, bytes(out[top.begin :]), entities, dropped)
            opened.pop()
        i += 1  # past the ">"
    if opened:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{opened[-1].tag}"')
    try:
        plain = out.decode("utf-8")
    except UnicodeDecodeError:
        if not recheck:
            raise
        raise HtmlError(
            "Text contains invalid Unicode characters after decoding HTML entities, "
            "check for unmatched surrogate code units"
        ) from None
    # A lone <code class="language-x"> keeps no language (TDLib clears it).
    entities = [Entity("code", e.offset, e.length) if e.type == "code" else e for e in entities]
    entities.sort(key=lambda e: (e.offset, -e.length))
    return ParsedText(plain, tuple(entities), tuple(ampersands), tuple(dropped))


def _close(
    top: _Open, length: int, inner: bytes, entities: list[Entity], dropped: list[str]
) -> None:
    """Append the entity an end tag closes (TDLib's big if/else chain)."""
    tag, offset = top.tag, top.offset
    if tag in SIMPLE_TYPES or (tag == "span" and top.argument == "spoiler"):
        entities.append(Entity(SIMPLE_TYPES.get(tag, "spoiler"), offset, length))
    elif tag == "tg-emoji":
        if not top.argument.isdigit() or int(top.argument) == 0:
            raise HtmlError("Invalid custom emoji identifier specified")
        entities.append(Entity("custom_emoji", offset, length, custom_emoji_id=top.argument))
    elif tag == "tg-time":
        entities.append(Entity("date_time", offset, length))
    elif tag == "a":
        url = top.argument or inner.decode("utf-8", "replace")
        user_id = _user_link(url)
        if user_id is not None:
            entities.append(Entity("text_mention", offset, length, user_id=user_id))
        elif _checked_link(url) is not None:
            entities.append(Entity("text_link", offset, length, url=url))
        else:
            dropped.append(url)
    elif tag == "pre":
        last = entities[-1] if entities else None
        if (
            last
            and last.type == "code"
            and (last.offset, last.length) == (offset, length)
            and last.language
        ):
            entities[-1] = Entity("pre", offset, length, language=last.language)
        else:
            entities.append(Entity("pre", offset, length))
    elif tag == "code":
        last = entities[-1] if entities else None
        if (
            last
            and last.type == "pre"
            and (last.offset, last.length) == (offset, length)
            and top.argument
        ):
            entities[-1] = Entity("pre", offset, length, language=top.argument)
        else:
            entities.append(Entity("code", offset, length, language=top.argument or None))
    elif tag == "blockquote":
        kind = "expandable_blockquote" if top.argument else "blockquote"
        entities.append(Entity(kind, offset, length))


def fix_text(text: str, entities: tuple[Entity, ...]) -> tuple[str, tuple[Entity, ...]]:
    """What TDLib does to a message before it measures it (a subset of
    clean_input_string and fix_formatted_text): control characters but
    ``\\n`` become spaces, ``\\r`` and bidi/line separators are removed, and
    spaces and newlines are trimmed at the ends (not inside a leading entity).
    Entity offsets follow the text."""
    kept: list[str] = []
    new_at = [0]  # UTF-16 offset in the new text for each old UTF-16 offset
    for ch in text:
        units = 2 if ord(ch) > 0xFFFF else 1  # UTF-16 code units
        if ch not in _DROPPED:
            kept.append(" " if ord(ch) < 32 and ch != "\n" else ch)
        step = 0 if ch in _DROPPED else 1
        for _ in range(units):
            new_at.append(new_at[-1] + step)
    cleaned = "".join(kept)
    moved = []
    for e in entities:
        start, end = new_at[e.offset], new_at[min(e.offset + e.length, len(new_at) - 1)]
        if end > start:
            moved.append(
                Entity(e.type, start, end - start, e.url, e.user_id, e.language, e.custom_emoji_id)
            )
    body = cleaned.rstrip(" \n")
    end16 = utf16_len(body)
    clipped = [
        Entity(
            e.type,
            e.offset,
            min(e.length, end16 - e.offset),
            e.url,
            e.user_id,
            e.language,
            e.custom_emoji_id,
        )
        for e in moved
        if e.offset < end16
    ]
    first_entity = min((e.offset for e in clipped), default=end16)
    lead = len(body) - len(body.lstrip(" \n"))
    lead = min(lead, first_entity)  # ASCII only, so characters == UTF-16 units
    shifted = tuple(
        Entity(e.type, e.offset - lead, e.length, e.url, e.user_id, e.language, e.custom_emoji_id)
        for e in clipped
    )
    return body[lead:], shifted

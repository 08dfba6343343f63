"""Character references no XML parser accepts are repaired before parsing."""

from __future__ import annotations

import codecs
import re
import xml.sax

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newswatch.feeds.charrefs import repair_charrefs, repair_charrefs_text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # A surrogate pair, hex, decimal, with leading zeros, mixed case.
        ("&#xD83D;&#xDE00;", "&#x1F600;"),
        ("&#55357;&#56832;", "&#x1F600;"),
        ("&#x0000d83d;&#X00DE00;", "&#x1F600;"),
        ("&#0055357;&#56832;", "&#x1F600;"),
        # Lone surrogates, a reversed pair, a pair split by text.
        ("&#xD83D;", "&#xFFFD;"),
        ("&#xDE00;&#xD83D;", "&#xFFFD;&#xFFFD;"),
        ("&#xD83D; &#xDE00;", "&#xFFFD; &#xFFFD;"),
        ("&#xD83D;&#xD83D;&#xDE00;", "&#xFFFD;&#x1F600;"),
        # Beyond U+10FFFF, and far beyond (int() of 5,000 digits would raise).
        ("&#x110000;", "&#xFFFD;"),
        ("&#1114112;", "&#xFFFD;"),
        ("&#" + "9" * 5000 + ";", "&#xFFFD;"),
        ("&#x" + "F" * 40 + ";", "&#xFFFD;"),
        # Non-characters and the C0 controls XML forbids.
        ("&#xFFFE;&#65535;", "&#xFFFD;&#xFFFD;"),
        ("a&#0;b&#x1;c&#31;d", "a&#x20;b&#x20;c&#x20;d"),
        # Left alone: valid references, escaped ones, incomplete ones.
        ("&#x10FFFF; &#1114111; &#x1F600; &#128512;", "&#x10FFFF; &#1114111; &#x1F600; &#128512;"),
        ("&#8217; &#x2019; &#38; &#x26; &#xFFFD; &#55295; &#57344;", None),
        ("&#9; &#10; &#13; &#x0A; &#32;", None),
        ("&amp;#xD83D; &#xD83D &#; &#x; &#xZZ;", None),
    ],
)
def test_repair(before: str, after: str | None) -> None:
    expected = before if after is None else after
    assert repair_charrefs(before.encode()) == expected.encode()
    assert repair_charrefs_text(before) == expected


def test_unchanged_body_is_returned_as_is() -> None:
    body = b"<rss><item><title>&#8217; fine</title></item></rss>"
    assert repair_charrefs(body) is body


def test_inside_cdata_a_reference_stays_a_reference() -> None:
    # In CDATA the reference is text that newswatch later reads as HTML: it
    # must stay a reference (now a valid one), not become a raw character.
    body = b"<d><![CDATA[<p>&#xD83D;&#xDE00; &#xD83D;</p>]]></d>"
    assert repair_charrefs(body) == b"<d><![CDATA[<p>&#x1F600; &#xFFFD;</p>]]></d>"


DOC = '<?xml version="1.0" encoding="{enc}"?><t>{text} &#xD83D;&#xDE00; &#xDE00;</t>'
FIXED = '<?xml version="1.0" encoding="{enc}"?><t>{text} &#x1F600; &#xFFFD;</t>'


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("utf-8", "Pyŏngyang"),
        ("windows-1252", "“Café” – déjà"),
        ("iso-8859-1", "Ångström"),
        ("euc-kr", "러시아와 북한"),
        ("shift_jis", "日本語のソース"),  # trail bytes never look like "&#"
        ("gb18030", "北京"),
        ("big5", "臺灣"),
        ("iso-2022-jp", "日本語"),  # stateful: decoded, repaired, encoded again
    ],
)
def test_every_encoding_of_the_document(encoding: str, text: str) -> None:
    body = DOC.format(enc=encoding, text=text).encode(encoding)
    assert repair_charrefs(body).decode(encoding) == FIXED.format(enc=encoding, text=text)


@pytest.mark.parametrize(
    ("codec", "bom"),
    [
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-32-le", codecs.BOM_UTF32_LE),
        ("utf-32-be", codecs.BOM_UTF32_BE),
        ("utf-16-le", b""),  # no byte-order mark: sniffed from "<?"
        ("utf-16-be", b""),
        ("utf-32-le", b""),
    ],
)
def test_wide_encodings_keep_their_byte_order(codec: str, bom: bytes) -> None:
    enc = codec[:6]
    body = bom + DOC.format(enc=enc, text="wide").encode(codec)
    repaired = repair_charrefs(body)
    assert repaired.startswith(bom)
    assert repaired[len(bom) :].decode(codec) == FIXED.format(enc=enc, text="wide")


def test_charset_from_the_http_header_wins() -> None:
    body = "<?xml version='1.0'?><t>日本 &#xD83D;</t>".encode("iso-2022-jp")
    fixed = repair_charrefs(body, "text/xml; charset=ISO-2022-JP")
    assert fixed.decode("iso-2022-jp") == "<?xml version='1.0'?><t>日本 &#xFFFD;</t>"


def test_undecodable_wide_body_is_left_for_the_parser() -> None:
    body = codecs.BOM_UTF16_LE + b"<\x00\x00\xd8"  # a lone surrogate in the bytes
    assert repair_charrefs(body) is body


# --------------------------------------------------------------------------- property

_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def naive_repair(text: str) -> str:
    """The definition, looking at every reference (the module looks only at
    those its regex flags as candidates)."""
    out: list[str] = []
    last = 0
    matches = list(_REF.finditer(text))
    i = 0
    while i < len(matches):
        m = matches[i]
        hex_digits, dec_digits = m.groups()
        value = int(hex_digits, 16) if hex_digits else int(dec_digits)
        nxt = matches[i + 1] if i + 1 < len(matches) else None
        replacement = None
        end = m.end()
        if 0xD800 <= value <= 0xDBFF:
            low = None
            if nxt is not None and nxt.start() == m.end():
                h2, d2 = nxt.groups()
                low = int(h2, 16) if h2 else int(d2)
            if low is not None and 0xDC00 <= low <= 0xDFFF:
                replacement = f"&#x{0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00):X};"
                end = nxt.end() if nxt is not None else end
                i += 1
            else:
                replacement = "&#xFFFD;"
        elif 0xDC00 <= value <= 0xDFFF or value > 0x10FFFF or value in (0xFFFE, 0xFFFF):
            replacement = "&#xFFFD;"
        elif value < 0x20 and value not in (0x9, 0xA, 0xD):
            replacement = "&#x20;"
        if replacement is not None:
            out.append(text[last : m.start()] + replacement)
            last = end
        i += 1
    return "".join(out) + text[last:]


refs = st.one_of(
    st.integers(0, 0x11FFFF).map(lambda n: f"&#x{n:X};"),
    st.integers(0, 0x11FFFF).map(lambda n: f"&#{n};"),
    st.integers(0, 0x40).map(lambda n: f"&#x{n:02x};"),
    st.integers(0xFFF0, 0xFFFF).map(lambda n: f"&#{n};"),
    st.integers(0xD800, 0xDFFF).map(lambda n: f"&#x{n:x};"),
    st.integers(0xD800, 0xDFFF).map(str).map(lambda s: f"&#00{s};"),
    st.sampled_from(["a", " ", "&amp;", "<b>", "é", "&#", ";", "x"]),
)


@given(st.lists(refs, max_size=12).map("".join))
def test_repair_agrees_with_the_definition(text: str) -> None:
    assert repair_charrefs_text(text) == naive_repair(text)
    assert repair_charrefs(text.encode()) == naive_repair(text).encode()


@given(st.lists(refs, max_size=12).map("".join))
def test_repaired_xml_is_well_formed(text: str) -> None:
    escaped = text.replace("<b>", "")
    doc = f"<?xml version='1.0' encoding='utf-8'?><t>{escaped}</t>"
    if re.search(r"&(?!#|amp;)", escaped) or re.search(r"&#(?![xX]?[0-9a-fA-F]+;)", escaped):
        return  # not about references: a bare "&" is malformed anyway
    xml.sax.parseString(repair_charrefs(doc.encode()), xml.sax.ContentHandler())


def test_stateful_encodings_are_not_rewritten_as_bytes() -> None:
    # In ISO-2022-JP's two-byte mode these five kanji are the bytes
    # "&#1114112;": a byte-level rewrite would corrupt them.
    kanji = b"\x1b$B&#1114112;\x1b(B".decode("iso-2022-jp")
    body = f'<?xml version="1.0" encoding="iso-2022-jp"?><t>{kanji}</t>'.encode("iso-2022-jp")
    assert b"&#1114112;" in body
    assert repair_charrefs(body) is body

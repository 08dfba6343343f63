"""Folding and tokenization: accents, quotes, width, case, scripts, offsets."""

from __future__ import annotations

import pytest

from newswatch.rules.doc import FieldText
from newswatch.rules.text import (
    CJK,
    HANGUL,
    SEA,
    TOKEN_RE,
    WORD,
    _Folder,
    fast_tokens,
    fold,
    fold_text,
    to_original,
    token_class,
    tokenize,
)


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Pyŏngyang", "pyongyang"),
        ("Café NAÏVE Ångström", "cafe naive angstrom"),
        ("ＲＵＳＳＩＡ １２３", "russia 123"),  # NFKC: fullwidth letters and digits
        ("Straße", "strasse"),  # casefold
        ("“North Korea” ‘Moon’", "\"north korea\" 'moon'"),
        ("a–b—c−d", "a-b-c-d"),
        ("ﬁnance", "finance"),
        ("e\u0301cole", "ecole"),  # decomposed accent
        ("Rus\u00adsia", "russia"),  # soft hyphen
        ("İstanbul", "istanbul"),
        ("Москва́", "москва"),  # Cyrillic stress mark folded
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold_text(text) == folded


def test_fold_keeps_marks_that_are_spelling() -> None:
    assert fold_text("ภาษาไทย") == "ภาษาไทย"  # Thai vowel signs stay
    assert fold_text("नमस्ते") == "नमस्ते"  # Devanagari matras stay
    assert fold_text("러시아는 北韩") == "러시아는 北韩"


def test_case_sensitive_fold_keeps_case_only() -> None:
    assert fold_text("Pyŏngyang ＵＳ “x”", casefold=False) == 'Pyongyang US "x"'


def test_offset_map_points_back_to_the_original() -> None:
    text = "Straße … Pyŏngyang"
    norm, offmap = fold(text)
    assert norm == "strasse ... pyongyang"
    assert offmap is not None
    start = norm.index("pyongyang")
    s, e = to_original(offmap, start, start + len("pyongyang"))
    assert text[s:e] == "Pyŏngyang"
    s, e = to_original(offmap, 0, len("strasse"))
    assert text[s:e] == "Straße"
    assert fold("plain ascii") == ("plain ascii", None)


def test_tokens_split_at_script_changes() -> None:
    assert tokenize("THAAD는 北韩中国THAAD U.S. snake_case 7,000") == [
        "thaad",
        "는",
        "北韩中国",
        "thaad",
        "u",
        "s",
        "snake",
        "case",
        "7",
        "000",
    ]
    assert [token_class(t) for t in tokenize("Russia 러시아 北韩 ไทย")] == [WORD, HANGUL, CJK, SEA]


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII text, with punctuation!",
        "Pyŏngyang ＲＵＳＳＩＡ Straße “North Korea” – THAAD 러시아는 벨라러시아 北韩中国THAAD는",
        "ภาษาไทย e\u0301cole Rus\u00adsia ﬁnance … x\xa0y",
        "러시아는 벨라러시아 북한의 핵실험 THAAD는 배치 " * 5,
        "中国和北韩的关系。東京とうきょう、ＴＯＫＹＯ",
        "",
        "   ",
        "…",
    ],
)
@pytest.mark.parametrize("casefold", [True, False])
def test_fast_tokens_equal_the_plain_definition(text: str, casefold: bool) -> None:
    assert fast_tokens(text, casefold) == TOKEN_RE.findall(fold_text(text, casefold))


def test_field_text_joined_and_multi_values() -> None:
    ft = FieldText(("Korea Herald", "korea", "North-East"), casefold=True)
    assert ft.display == "Korea Herald, korea, North-East"
    assert ft.tokens == ["korea", "herald", "korea", "north", "east"]
    assert ft.joined == " korea herald \n korea \n north east "
    # NEAR never pairs words of two values
    assert ft.positions() == [0, 1, 1002, 2003, 2004]
    assert [ft.joined[j : j + len(t)] for j, t in zip(ft.jstarts(), ft.tokens, strict=True)] == (
        ft.tokens
    )
    start = ft.joined.index("east")
    assert ft.display_span(start, start + 4) == (27, 31)


@pytest.mark.parametrize(
    "values",
    [
        ("Straße STRASSE strasse, ＮＯＲＴＨ north Pyŏngyang’s pyongyang",),
        ("THAAD는 THAAD thaad-x xthaad THAADs " * 4,),
        ("Korea Herald", "korea", "North-East korea"),
        ("ﬁnance finance Rus\u00adsia russia e\u0301cole école",),
    ],
)
@pytest.mark.parametrize("casefold", [True, False])
def test_token_spans_agree_with_joined_occurrences(values: tuple[str, ...], casefold: bool) -> None:
    # token_spans finds a word in the folded text directly; it must give the
    # same spans, in the same order, as mapping its occurrences in ``joined``.
    ft = FieldText(values, casefold)
    for token in dict.fromkeys(ft.tokens):
        needle = f" {token} "
        expected = []
        i = ft.joined.find(needle)
        while i >= 0:
            expected.append(ft.display_span(i + 1, i + 1 + len(token)))
            i = ft.joined.find(needle, i + 1)
        assert FieldText(values, casefold).token_spans(token, 10) == expected[:10]
        assert ft.token_spans(token, 2) == expected[:2]  # a later, longer ask extends the list
        assert ft.token_spans(token, 10) == expected[:10]


@pytest.mark.parametrize(
    "text",
    [
        "Les droits de l’Homme — égalité, fraternité. " * 10,
        "North Korea (북한) said “no” to THAAD; Pyŏngyang’s reply… " * 10,
        "Straße and İstanbul and ﬁnance in a mostly ASCII sentence. " * 10,
        "Cherokee ꭰ and Ꭰ and café " * 10,
    ],
)
@pytest.mark.parametrize("casefold", [True, False])
def test_fold_of_mostly_ascii_text_agrees_with_folding_char_by_char(
    text: str, casefold: bool
) -> None:
    # fold() replaces each distinct character in bulk when every one folds to
    # itself or to one ASCII character; char by char is the reference.
    assert fold(text, casefold) == _Folder(casefold)._fold_sparse(text)

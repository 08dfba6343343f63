"""The folding caches are shared by ingest threads: a reset in one thread
must never make another thread's fold miss a mapping (issue 10)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from newswatch.rules import text
from newswatch.rules.text import _fold_char, fast_tokens, fold_text

# Texts whose folding needs the cache: accents, fullwidth letters, ligatures.
CASES = [
    "Pyŏngyang Café NAÏVE Ångström",
    "ＲＵＳＳＩＡ and ﬁnance in Москва́",
    "Straße “North Korea” – İstanbul",
]
# Each round folds these fresh characters, so the cache keeps filling up.
FILLER = [chr(cp) for cp in range(0x4E00, 0x4E00 + 4_000)]


def expected(s: str) -> str:
    return "".join(_fold_char(ch, True) for ch in s)


@pytest.fixture
def tiny_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A small cache resets every few folds: the race is then hit at once.
    monkeypatch.setattr(text, "_FOLD_CACHE_MAX", 8)
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    yield
    sys.setswitchinterval(old)
    for folder in text._FOLDERS.values():
        folder.reset()


def test_concurrent_folding_survives_resets(tiny_caches: None) -> None:
    wrong: list[tuple[str, str]] = []
    stop = threading.Event()

    def fold_cases() -> None:
        for _ in range(1_000):
            for case in CASES:
                got = fold_text(case)
                if got != expected(case):
                    wrong.append((case, got))
            if wrong or stop.is_set():
                return

    def force_resets() -> None:
        i = 0
        while not stop.is_set():
            fold_text("".join(FILLER[i % len(FILLER) : i % len(FILLER) + 16]))
            i += 16

    resetter = threading.Thread(target=force_resets)
    folders = [threading.Thread(target=fold_cases) for _ in range(4)]
    resetter.start()
    for t in folders:
        t.start()
    for t in folders:
        t.join(timeout=30)
    stop.set()
    resetter.join(timeout=30)
    assert not wrong, f"{len(wrong)} wrong folds, e.g. {wrong[0]}"


def test_concurrent_tokens_survive_resets(
    tiny_caches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(text, "_CHUNK_CACHE_MAX", 4)
    sentence = "Le café de Pyŏngyang et l’accord “céréalier” à Москва́ " * 3
    want = text.tokenize(sentence)
    wrong: list[list[str]] = []
    stop = threading.Event()

    def tokens() -> None:
        for _ in range(600):
            got = fast_tokens(sentence)
            if got != want:
                wrong.append(got)
                return

    def force_resets() -> None:
        i = 0
        while not stop.is_set():
            fast_tokens("abc " + "".join(FILLER[i % 3_000 : i % 3_000 + 8]) + "é")
            i += 8

    resetter = threading.Thread(target=force_resets)
    workers = [threading.Thread(target=tokens) for _ in range(4)]
    resetter.start()
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=30)
    stop.set()
    resetter.join(timeout=30)
    assert not wrong, f"{len(wrong)} wrong token lists, e.g. {wrong[0][:12]}"

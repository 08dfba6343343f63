"""Story clustering, the pure parts: shingles, signatures and bands, the
same-story decision, and edit detection. (The finder against a real store
is in test_store_stories.py; precision and recall in test_stories_eval.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest

from newswatch.model import Article
from newswatch.stories import Thresholds, compare, decide, signature, text_signature
from newswatch.stories.shingles import shingle
from newswatch.stories.similar import Similarity
from newswatch.stories.sketch import BODY_BAND_OFFSET, BODY_BANDS, LEAD_BANDS
from samples import seed_body

SEED = seed_body()
PARAS = [p for p in SEED.split("\n") if p.strip()]


def art(text: str, title: str = "A title", summary: str = "") -> Article:
    return Article(
        feed_key="f",
        entry_key="e",
        story_key="s",
        title=title,
        summary=summary,
        content=text,
        link="https://example.org/a",
        canonical_url="https://example.org/a",
        author="",
        categories=(),
        published=datetime(2016, 6, 16, tzinfo=UTC),
        source="Outlet",
    )


# --------------------------------------------------------------------------- shingles


def test_shingles_are_the_matchers_folded_words() -> None:
    # Case, accents and curly quotes are folded as the matcher folds them.
    a = shingle("Pyŏngyang said “Russia” and North Korea")
    b = shingle('PYONGYANG said "russia" and north korea')
    assert np.array_equal(a.set, b.set)
    assert len(a.words) == 4  # 6 words, 3 per shingle
    assert len(shingle("russia north korea said").set) == 2


def test_a_text_shorter_than_a_shingle_is_one_shingle() -> None:
    assert len(shingle("THAAD").set) == 1
    assert len(shingle("").set) == 0


def test_korean_is_shingled_by_characters_so_particles_and_spacing_do_not_matter() -> None:
    a = shingle("러시아와 북한이 평양에서 조약에 서명했다")
    b = shingle("러시아와북한이 평양에서조약에 서명했다")  # other spacing
    assert np.array_equal(a.set, b.set)
    assert len(a.chars) > 0 and len(a.words) == 0
    # A changed particle changes only the shingles around it.
    c = shingle("러시아는 북한이 평양에서 조약에 서명했다")
    common = np.intersect1d(a.set, c.set).size
    assert common >= len(a.set) - 3


def test_shingle_hashes_are_stable_across_processes() -> None:
    """Bands are compared across replicas: no per-process salt (hash()).
    This process and one with another hash seed agree."""
    text = (
        "Russia and North Korea sign a defence pact in Pyongyang "
        "on Wednesday, committing each to aid the other"
    )
    code = f"from newswatch.stories import text_signature; print(text_signature({text!r}).bands)"
    seed = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
    ).stdout
    assert out.strip() == str(text_signature(text).bands)


# --------------------------------------------------------------------------- bands


def test_bands_number_the_two_views() -> None:
    sig = text_signature(SEED)
    numbers = [b for b, _ in sig.bands]
    assert numbers == [*range(LEAD_BANDS), *range(BODY_BAND_OFFSET, BODY_BAND_OFFSET + BODY_BANDS)]
    assert all(-(2**31) <= h < 2**31 for _, h in sig.bands)  # a 32-bit column
    assert text_signature("").bands == ()


def test_a_truncated_summary_shares_the_leads_bands_with_the_full_copy() -> None:
    full = text_signature(SEED)
    summary = text_signature(SEED[:280].rsplit(" ", 1)[0] + "…")
    lead_full = {b for b in full.bands if b[0] < BODY_BAND_OFFSET}
    lead_summary = {b for b in summary.bands if b[0] < BODY_BAND_OFFSET}
    assert lead_full == lead_summary


def test_unrelated_stories_share_no_band() -> None:
    other = text_signature(
        "Typhoon Jongdari was approaching the southern island of Jeju on Tuesday with winds "
        "of up to 30 meters per second, forcing airlines to cancel more than 200 flights and "
        "ferries to stay in port. Schools will close on Wednesday."
    )
    assert not set(other.bands) & set(text_signature(SEED).bands)


def test_signature_uses_the_longer_body_and_the_title_only_when_short() -> None:
    long_content = signature(art(SEED, summary=PARAS[0]))
    assert np.array_equal(long_content.shingles, text_signature(SEED).shingles)
    in_summary = signature(art("", summary=SEED))
    assert np.array_equal(in_summary.shingles, long_content.shingles)
    teaser = signature(art("Talks end.", title="Yun and Lavrov meet in Moscow for talks"))
    assert np.array_equal(
        teaser.shingles,
        text_signature("Yun and Lavrov meet in Moscow for talks\nTalks end.").shingles,
    )


# --------------------------------------------------------------------------- the decision

T = Thresholds(jaccard=0.5, containment=0.7, min_contained=20)


@pytest.mark.parametrize(
    ("sim", "same"),
    [
        (Similarity(jaccard=0.5, containment=0.6, lead=0, smaller=100), True),
        (Similarity(jaccard=0.49, containment=0.69, lead=1.0, smaller=100), False),  # lead alone
        (Similarity(jaccard=0.1, containment=0.7, lead=0, smaller=20), True),
        (Similarity(jaccard=0.9, containment=0.9, lead=1.0, smaller=19), False),  # too short
        (Similarity(jaccard=0.0, containment=0.0, lead=0, smaller=0), False),
    ],
)
def test_same_story_thresholds(sim: Similarity, same: bool) -> None:
    assert sim.same_story(T) is same


def test_copies_of_the_seed_are_the_same_story() -> None:
    full = text_signature(SEED)
    cases = {
        "trimmed": "\n".join(PARAS[:-4]),
        "dateline and footer": "SEOUL, June 16 (Yonhap) -- "
        + SEED
        + "\nⓒ The Korea Herald. Unauthorized reproduction prohibited.",
        "truncated summary": SEED[:300].rsplit(" ", 1)[0] + "…",
        "extended": SEED
        + "\n"
        + "Analysts in Seoul said the visit set the stage for a summit. " * 3,
    }
    for name, text in cases.items():
        assert compare(text_signature(text), full).same_story(T), name


def test_another_story_about_the_same_meeting_is_not() -> None:
    other = text_signature(
        "South Korean Foreign Minister Yun Byung-se and his Russian counterpart Sergey Lavrov "
        "agreed on Monday that they would never accept North Korea as a nuclear weapons state, "
        "and pledged to work together for the denuclearization of the Korean Peninsula. The two "
        "ministers met in Moscow for about three hours, their first talks in Russia in five "
        "years. Lavrov said Moscow would strictly carry out the U.N. Security Council "
        "resolution adopted in March after the North's fourth nuclear test."
    )
    assert not compare(other, text_signature(SEED)).same_story(T)


def test_decide_picks_the_most_similar_confirmed_story_and_lists_the_rest() -> None:
    full = text_signature(SEED)
    trimmed = text_signature("\n".join(PARAS[:8]))
    unrelated = text_signature("Typhoon Jongdari nears Jeju. " * 10 + "Flights were cancelled.")
    new = text_signature("\n".join(PARAS[:12]))
    verdict = decide(new, {7: [trimmed], 3: [unrelated], 9: [full]}, T)
    # 9 (the full copy) contains the new text and is more similar than 7.
    assert verdict.story_id in (7, 9)
    assert verdict.rejected == (3,)
    assert set(verdict.also) | {verdict.story_id} == {7, 9}
    assert decide(new, {}, T).story_id is None


def test_ties_go_to_the_older_story() -> None:
    full = text_signature(SEED)
    verdict = decide(full, {12: [full], 4: [full]}, T)
    assert verdict.story_id == 4 and verdict.also == (12,)


def test_a_copy_that_adds_substantial_text_is_an_update() -> None:
    first = text_signature("\n".join(PARAS[:6]))
    longer = text_signature("\n".join(PARAS[:14]))
    same = text_signature("\n".join(PARAS[:6]) + "\n(Yonhap)")
    grown = decide(longer, {1: [first]}, T)
    assert grown.story_id == 1 and grown.update
    assert grown.new_shingles >= T.update_min_shingles and grown.new_share >= T.update_share
    assert not decide(same, {1: [first]}, T).update
    # Enough new shingles but a small share of a long story: not an update.
    whole = text_signature(SEED)
    appended = text_signature(
        SEED + "\nThe ministry later said the minister would also meet Bulgarian business "
        "leaders and visit a shipyard in Varna, where Korean firms have built several "
        "vessels for European buyers over the past decade, before flying home on Friday. "
        "Officials in Sofia said they hoped to sign an agreement on nuclear power "
        "cooperation during a later visit by the Bulgarian prime minister to Seoul."
    )
    small = decide(appended, {1: [whole]}, T)
    assert small.new_shingles >= T.update_min_shingles and not small.update
    # Against the union of the stored copies: what one of them said is not new.
    assert not decide(longer, {1: [first, longer]}, T).update


# --------------------------------------------------------------------------- edits

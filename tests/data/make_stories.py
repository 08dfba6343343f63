"""Build tests/data/stories.jsonl, the labelled near-duplicate set, from
tests/data/stories-base.txt (text written for newswatch) and the seed story
(config/feeds/sample.xml).

    python tests/data/make_stories.py            # rewrite stories.jsonl
    python tests/data/make_stories.py --check    # exit 1 if it is stale

Each base story becomes the copies several outlets would publish: the wire
original with its dateline, a copy with another headline, a byline and one
paragraph less, a truncated RSS summary, a copy extended with the topic's
background paragraph, an aggregator copy with light edits, swapped
paragraphs and WordPress boilerplate behind a redirect link, a copy that
opens with the topic's background instead of the wire's lead, and a trimmed
copy with a newsletter footer; stories with a Korean version get three
Korean copies. Every article carries its story label; stories of one topic
are different events and must stay apart. Deterministic: the same base
text always gives the same file.

The functions are also used by benchmarks/stories.py to build the same
variants from another corpus (``--corpus``) in a temporary folder.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).resolve().parent
BASE = HERE / "stories-base.txt"
OUT = HERE / "stories.jsonl"
SAMPLE = HERE.parents[1] / "config" / "feeds" / "sample.xml"


@dataclass
class Story:
    id: str
    topic: str
    date: str
    dateline: str
    headlines: list[str]
    paragraphs: list[str]
    background: str = ""
    ko_title: str = ""
    ko_paragraphs: list[str] = field(default_factory=list)


@dataclass
class Labelled:
    """One article of the set, with its story label."""

    id: str
    story: str
    topic: str
    outlet: str
    variant: str
    lang: str
    title: str
    summary: str
    content: str
    link: str
    published: str


def seed_paragraphs() -> list[str]:
    sample = SAMPLE.read_text(encoding="utf-8")
    body = sample.split("<![CDATA[", 1)[1].split("]]>", 1)[0]
    text = re.sub(r"<[^>]+>", "\n", body)
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n|\n", text)]
    paras = [p for p in paras if p]
    # The seed ends with its wire tag; the builder adds each outlet's own.
    if paras and paras[-1].endswith("(Yonhap)"):
        paras[-1] = paras[-1].removesuffix("(Yonhap)").rstrip()
    # Two lines of the seed are one paragraph broken by the page layout.
    joined: list[str] = []
    for p in paras:
        if joined and joined[-1].endswith('"Look East"'):
            joined[-1] += " " + p
        else:
            joined.append(p)
    return joined


def parse_base(text: str) -> list[Story]:
    stories: list[Story] = []
    topic, background = "", ""
    current: Story | None = None
    mode = ""
    paragraph: list[str] = []

    def flush() -> None:
        if current is not None and paragraph:
            target = current.ko_paragraphs if mode == "ko" else current.paragraphs
            target.append(" ".join(paragraph))
        paragraph.clear()

    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("#"):
            continue
        if line.startswith("== "):
            flush()
            topic, background, current = line[3:].strip(), "", None
        elif line.startswith("background: "):
            background = line.removeprefix("background: ")
        elif line.startswith("-- "):
            flush()
            current = Story(line[3:].strip(), topic, "", "", [], [], background)
            stories.append(current)
            mode = "meta"
        elif current is None:
            continue
        elif mode == "meta" and line.startswith("date: "):
            current.date = line.removeprefix("date: ")
        elif mode == "meta" and line.startswith("dateline: "):
            current.dateline = line.removeprefix("dateline: ")
        elif mode == "meta" and line == "headlines:":
            mode = "headlines"
        elif mode == "headlines" and line.startswith("- "):
            current.headlines.append(line[2:])
        elif line.startswith("ko: "):
            flush()
            mode, current.ko_title = "ko", line.removeprefix("ko: ")
        elif line == "@seed":
            current.paragraphs.extend(seed_paragraphs())
        elif not line.strip():
            flush()
        else:
            if mode == "headlines":
                mode = "en"
            paragraph.append(line.strip())
    flush()
    return stories


# --------------------------------------------------------------------------- variants

_MONTHS = [
    "Jan.",
    "Feb.",
    "March",
    "April",
    "May",
    "June",
    "July",
    "Aug.",
    "Sept.",
    "Oct.",
    "Nov.",
    "Dec.",
]
# Light copy-editing an aggregator or a rewrite desk does.
_EDITS = (
    (" said on ", " said "),
    (" told reporters", " said"),
    (" percent", "%"),
    ("South Korea's", "Korea's"),
    (" on Monday", " Monday"),
    (" on Tuesday", " Tuesday"),
    (" on Wednesday", " Wednesday"),
    (" on Thursday", " Thursday"),
    (" on Friday", " Friday"),
    ("United States", "U.S."),
    (" about ", " some "),
)


def _n(story_id: str, salt: str, mod: int) -> int:
    digest = hashlib.sha256(f"{story_id}/{salt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % mod


def _when(story: Story, offset: timedelta) -> datetime:
    day = datetime.fromisoformat(story.date).replace(hour=6, tzinfo=UTC)
    return day + timedelta(minutes=_n(story.id, "t", 600)) + offset


def _first_words(paragraphs: Sequence[str], chars: int) -> str:
    text = " ".join(paragraphs)
    if len(text) <= chars:
        return text
    cut = text[:chars].rsplit(" ", 1)[0]
    return cut + "…"


def _headline(story: Story, k: int) -> str:
    return story.headlines[k % len(story.headlines)]


def copy_maker(
    *, story: str, topic: str, lang: str, when: datetime, prefix: str = ""
) -> Callable[[str, str, int, str, str, str, str, int], Labelled]:
    """``make(outlet, variant, k, title, summary, content, link, delay_min)``:
    copy number ``k`` of one story, published ``delay_min`` after ``when``."""

    def make(outlet: str, variant: str, k: int, title: str, summary: str, content: str,
             link: str, delay_min: int) -> Labelled:  # fmt: skip
        return Labelled(
            id=f"{story}/{prefix}{k}",
            story=story,
            topic=topic,
            outlet=outlet,
            variant=variant,
            lang=lang,
            title=title,
            summary=summary,
            content=content,
            link=link,
            published=(when + timedelta(minutes=delay_min)).isoformat(),
        )

    return make


def english_copies(story: Story) -> Iterator[Labelled]:
    paras = story.paragraphs
    when = _when(story, timedelta(0))
    ymd = when.strftime("%Y%m%d")
    serial = _n(story.id, "serial", 900) + 100
    wire_link = f"https://en.yna.co.kr/view/AEN{ymd}00{serial}315"
    dateline = f"{story.dateline}, {_MONTHS[when.month - 1]} {when.day} (Yonhap) -- "

    make = copy_maker(story=story.id, topic=story.topic, lang="en", when=when)

    full = "\n\n".join([dateline + paras[0], *paras[1:]]) + " (END)"
    yield make("Yonhap", "wire", 0, _headline(story, 0), paras[0], full, wire_link, 0)

    body = "\n\n".join(["By Herald staff", *paras[:-1]])
    body += "\n\nⓒ The Korea Herald. Unauthorized reproduction and redistribution prohibited."
    link = f"https://www.koreaherald.com/article/{3_000_000 + _n(story.id, 'kh', 999_999)}"
    yield make("Korea Herald", "byline-trimmed", 1, _headline(story, 1), "", body, link, 35)

    link = (
        f"https://www.koreatimes.co.kr/www/nation/{when:%Y/%m}/"
        f"113_{_n(story.id, 'kt', 99_999)}.html"
    )
    summary = _first_words(paras, 180 + _n(story.id, "len", 120))
    yield make("Korea Times", "truncated-summary", 2, _headline(story, 2), summary, "", link, 50)

    body = "\n\n".join([*paras, story.background]) if story.background else "\n\n".join(paras)
    body += (
        "\n\nThis article was originally written in Korean and translated by a bilingual reporter."
    )
    slug = re.sub(r"[^a-z0-9]+", "-", _headline(story, 3).lower()).strip("-")[:60]
    link = (
        f"https://koreajoongangdaily.joins.com/news/{when:%Y-%m-%d}/national/{slug}/"
        f"{2_000_000 + _n(story.id, 'jd', 99_999)}?utm_source=rss&utm_medium=feed"
    )
    yield make("JoongAng Daily", "extended-background", 3, _headline(story, 3), "", body, link, 90)

    edited = list(paras)
    if len(edited) > 3:
        edited[1], edited[2] = edited[2], edited[1]
    text = "\n\n".join(edited)
    for old, new in _EDITS:
        text = text.replace(old, new)
    title = _headline(story, 0)
    text += f"\n\nThe post {title} appeared first on World News Wire."
    link = f"https://worldnewswire.example/out?url={quote(wire_link, safe='')}&src=rss"
    yield make("World News Wire", "aggregator-edited", 4, f"{title} - Yonhap", text[:400] + " […]",
               text, link, 20)  # fmt: skip

    if story.background:
        # The outlet opens with its own context paragraph (the same for every
        # story of the topic) and drops the wire's lead: the openings of two
        # different stories then look alike, and this copy's looks like
        # neither the wire's nor its other copies'.
        body = "\n\n".join([story.background, *paras[1:]])
        link = f"https://peninsula-post.example/news/{slug}"
        yield make("Peninsula Post", "rewritten-lead", 6, _headline(story, 2), "", body, link, 150)

    rng = random.Random(story.id)
    keep = max(2, len(paras) // 2 + rng.randint(0, 1))
    body = "\n\n".join(paras[:keep])
    body += "\n\nSign up for our morning newsletter to get the day's top stories from Asia."
    link = f"https://asiadaily.example/{when:%Y/%m/%d}/{slug}-{_n(story.id, 'ad', 9999)}"
    yield make("Asia Daily", "trimmed-newsletter", 5, _headline(story, 1), "", body, link, 120)


def korean_copies(story: Story) -> Iterator[Labelled]:
    if not story.ko_paragraphs:
        return
    when = _when(story, timedelta(minutes=10))
    paras = story.ko_paragraphs
    ymd = when.strftime("%Y%m%d")

    make = copy_maker(story=story.id, topic=story.topic, lang="ko", when=when, prefix="ko")

    full = "(서울=연합뉴스) 김민지 기자 = " + "\n\n".join(paras)
    full += "\n\n<저작권자(c) 연합뉴스, 무단 전재-재배포, AI 학습 및 활용 금지>"
    link = f"https://www.yna.co.kr/view/AKR{ymd}0{_n(story.id, 'ko', 99_999):05d}00504"
    yield make("연합뉴스", "ko-wire", 0, story.ko_title, paras[0], full, link, 0)

    body = "\n\n".join(paras[:-1]) + "\n\n이정훈 기자 ⓒ 무단전재 및 재배포 금지"
    link = f"https://www.hankookilbo.example/News/Read/A{ymd}{_n(story.id, 'hk', 9999):04d}"
    yield make("한국일보", "ko-trimmed", 1, "[종합] " + story.ko_title, "", body, link, 40)

    summary = _first_words(paras, 90 + _n(story.id, "kolen", 40))
    link = f"https://news.example.kr/article/{_n(story.id, 'kn', 999_999)}"
    yield make("뉴스1", "ko-summary", 2, story.ko_title.split("…")[0], summary, "", link, 60)


def build(stories: Sequence[Story]) -> list[Labelled]:
    out: list[Labelled] = []
    for story in stories:
        out.extend(english_copies(story))
        out.extend(korean_copies(story))
    return out


def to_jsonl(rows: Sequence[Labelled]) -> str:
    return "".join(json.dumps(asdict(r), ensure_ascii=False) + "\n" for r in rows)


def load(path: Path = OUT) -> list[Labelled]:
    with path.open(encoding="utf-8") as f:
        return [Labelled(**json.loads(line)) for line in f if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if stories.jsonl is stale")
    args = parser.parse_args(argv)
    text = to_jsonl(build(parse_base(BASE.read_text(encoding="utf-8"))))
    if args.check:
        same = OUT.is_file() and OUT.read_text(encoding="utf-8") == text
        print("stories.jsonl is up to date" if same else "stories.jsonl is stale: rebuild it")
        return 0 if same else 1
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT} ({text.count(chr(10))} articles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

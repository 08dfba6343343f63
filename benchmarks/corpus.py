"""Deterministic article corpus and watch-rule generators shared by the benchmarks.

Articles are made from real text reshuffled at the sentence level: the seed news
story (``shared/seeds/000_eaa30dac2a1dc43c.txt``) plus the public-domain texts in
``benchmarks/data/`` (see benchmarks/README.md). A long tail of pseudo-word
people and places is mixed in, so that rules about rare names behave like rules
about real, rarely mentioned names: mostly no match, sometimes one.

Rules are generated as a small AST (:class:`Word`, :class:`Phrase`, ...), rendered
to newswatch query syntax with :func:`render`, and kept alongside their query so
the baselines in ``match.py`` can evaluate the same structure without depending
on the engine's parser.

Everything is seeded: the same arguments give the same corpus and rules on any
machine (string seeds hash the same way in every CPython process).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from newswatch.model import Article

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED_ARTICLE = "000_eaa30dac2a1dc43c.txt"

# source name -> (file, weight as the main source of an article)
TEXT_SOURCES: dict[str, tuple[str, float]] = {
    "news": ("<seed>", 0.40),
    "declaration": ("declaration_of_independence.txt", 0.18),
    "constitution": ("us_constitution.txt", 0.18),
    "gettysburg": ("gettysburg_address.txt", 0.04),
    "ddhc": ("ddhc_1789_fr.txt", 0.10),
    "aegukga": ("aegukga_ko.txt", 0.03),
    "original": ("original_ko_fr.txt", 0.07),
}

FEEDS: tuple[tuple[str, str], ...] = (
    ("bench-wire-a", "Bench Wire A"),
    ("bench-wire-b", "Bench Wire B"),
    ("bench-daily", "Bench Daily"),
    ("bench-herald", "Bench Herald"),
    ("bench-gazette", "Bench Gazette"),
)
AUTHORS = ("Staff Writer", "Wire Desk", "Bench Bureau", "")
CATEGORIES = (("world",), ("politics",), ("asia", "diplomacy"), ("history",), ())

# Written for this benchmark (CC0). Their words are kept out of the rule vocabulary.
ENTITY_TEMPLATES = (
    "{name} said the talks would continue next week.",
    "According to {name}, the proposal has broad support in {place}.",
    "{name} told reporters in {place} that no decision had been made.",
    "A spokesperson for {name} declined to comment on {day}.",
    "{name} and {name2} are expected to meet in {place} later this month.",
    "The statement was issued by {name} in {place} on {day}.",
)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# Korean keywords: rules match them at the start of a word, so particles attach
# (러시아 matches 러시아는); 나라 must not match 우리나라, 러시아 not 벨라러시아.
KOREAN_KEYWORDS = (
    "러시아",
    "북한",
    "협력",
    "외교부",
    "장관",
    "중국",
    "사드",
    "서울",
    "핵",
    "현대자동차",
    "무궁화",
    "대한",
    "나라",
    "하늘",
    "대표단",
    "백두산",
)

_STOPWORDS = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing down during each
    few for from further had has have having he her here hers him his how i if in into is
    it its itself just me more most my no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there
    these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your near shall may upon thereof herein
    hath said one two also us
    le la les de des du un une et en est que qui ne pas par pour sur au aux ce ces dans
    il elle sa son ses leur leurs tout toute tous nul peut doit sont être d l n s qu
"""
STOPWORDS = frozenset(_STOPWORDS.split())
RULE_WORD_ZIPF = 0.3  # Zipf exponent for source-text words, phrases and prefixes in rules
RULE_NAME_ZIPF = 0.3  # Zipf exponent for people and places in rules (articles: 1.0)
OPERATOR_WORDS = frozenset({"and", "or", "not", "near"})

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


_COMBINING = dict.fromkeys(
    cp for cp in range(0x300, 0x20000) if unicodedata.combining(chr(cp))
)  # the marks NFKD splits off accented letters; Hangul jamo are not among them


def fold(text: str) -> str:
    """NFKC + casefold + accents folded (the engine's default normalization)."""
    if text.isascii():
        return text.lower()
    stripped = unicodedata.normalize("NFKD", text).translate(_COMBINING)
    return unicodedata.normalize("NFC", stripped).casefold()


def is_hangul(word: str) -> bool:
    return any("\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff" for c in word)


def find_seed_article() -> Path:
    """The shared seed article: $NEWSWATCH_SHARED/seeds, ../shared/seeds, /work/shared/seeds."""
    repo = Path(__file__).resolve().parent.parent
    roots: list[Path] = []
    if env := os.environ.get("NEWSWATCH_SHARED"):
        roots.append(Path(env))
    roots += [repo.parent / "shared", Path("/work/shared")]
    for root in roots:
        path = root / "seeds" / SEED_ARTICLE
        if path.is_file():
            return path
    tried = ", ".join(str(r / "seeds" / SEED_ARTICLE) for r in roots)
    raise FileNotFoundError(f"seed article not found (tried {tried}); set NEWSWATCH_SHARED")


def split_sentences(text: str) -> list[str]:
    """Paragraphs, then sentences; drops short lines (bylines, boilerplate)."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        for sentence in _SENTENCE_END.split(para):
            if len(sentence) >= 30:
                out.append(sentence)
    return out


def load_sources() -> dict[str, list[str]]:
    """Source name -> sentences."""
    result: dict[str, list[str]] = {}
    for name, (file, _weight) in TEXT_SOURCES.items():
        path = find_seed_article() if file == "<seed>" else DATA_DIR / file
        result[name] = split_sentences(path.read_text(encoding="utf-8"))
    return result


class Zipf:
    """Draw ranks 0..n-1 with probability proportional to 1 / (rank + 1) ** s."""

    def __init__(self, n: int, s: float = 1.0) -> None:
        self.cum = list(itertools.accumulate(1.0 / (r + 1) ** s for r in range(n)))

    def draw(self, rng: random.Random) -> int:
        return min(bisect.bisect(self.cum, rng.random() * self.cum[-1]), len(self.cum) - 1)


def _pseudo_words(count: int, seed: str, exclude: set[str]) -> list[str]:
    """Pronounceable made-up names (Kravenor, Tisholm) that occur in no source text."""
    rng = random.Random(seed)
    onsets = [*"bcdfghjklmnprstvz", "br", "dr", "kr", "tr", "st", "sh", "ch", "gl"]
    vowels = [*"aeiouaeiou", "ai", "ei", "ou", "ia"]
    codas = ["", "", "", "", "n", "r", "s", "l", "k", "m", "x", "nd", "rt"]
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
            for _ in range(rng.choice((2, 2, 2, 3)))
        )
        if len(word) < 5 or word in seen or word in exclude:
            continue
        seen.add(word)
        out.append(word.capitalize())
    return out


@dataclass(frozen=True, slots=True)
class Entity:
    first: str
    last: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


class World:
    """The vocabulary shared by the article and rule generators."""

    def __init__(self, seed: str = "newswatch-bench") -> None:
        self.seed = seed
        self.sources = load_sources()
        self.source_names = list(self.sources)
        self.source_weights = [TEXT_SOURCES[n][1] for n in self.source_names]
        self.all_sentences = [s for name in self.source_names for s in self.sources[name]]

        excluded = {fold(w) for w in STOPWORDS} | OPERATOR_WORDS
        for text in (*ENTITY_TEMPLATES, *DAYS, *AUTHORS, *(n for _, n in FEEDS)):
            excluded.update(fold(w) for w in _WORD.findall(text))
        excluded.update(fold(c) for cats in CATEGORIES for c in cats)
        excluded.update({"bench", "wire", "https", "news", "example", "org"})
        self.excluded = excluded

        def usable(word: str) -> bool:
            key = fold(word)
            return word.isalpha() and len(key) >= 3 and key not in excluded and not is_hangul(word)

        counts: Counter[str] = Counter()
        display: dict[str, Counter[str]] = {}
        bigrams: Counter[tuple[str, ...]] = Counter()
        pairs: list[tuple[str, str, int]] = []
        for sentence in self.all_sentences:
            tokens = _WORD.findall(sentence)
            for tok in tokens:
                if usable(tok):
                    key = fold(tok)
                    counts[key] += 1
                    display.setdefault(key, Counter())[tok] += 1
            for i in range(len(tokens) - 1):
                a, b = tokens[i], tokens[i + 1]
                if usable(a) and usable(b):
                    bigrams[(a, b)] += 1
                if (
                    i + 2 < len(tokens)
                    and usable(a)
                    and usable(tokens[i + 2])
                    and fold(b) in {"of", "the", "and", "de", "des"}
                ):
                    bigrams[(a, b, tokens[i + 2])] += 1
            content = [(i, t) for i, t in enumerate(tokens) if usable(t)]
            for (i, a), (j, b) in itertools.combinations(content, 2):
                if 2 <= j - i <= 8 and fold(a) != fold(b):
                    pairs.append((a, b, j - i))
        # Most frequent first; ties broken alphabetically so the order is stable.
        self.words = [display[k].most_common(1)[0][0] for k, _ in sorted(counts.items(), key=_rank)]
        # Rules pick source-text words with a flat Zipf: in a 150-sentence pool even
        # the rarest word is in several percent of articles, so the top of the
        # list would make most rules match.
        self.word_zipf = Zipf(len(self.words), RULE_WORD_ZIPF)
        self.phrases = [p for p, _ in sorted(bigrams.items(), key=_rank)]
        self.phrase_zipf = Zipf(len(self.phrases), RULE_WORD_ZIPF)
        self.near_pairs = pairs
        self.prefix_sources = [w for w in self.words if len(w) >= 7]
        self.prefix_zipf = Zipf(len(self.prefix_sources), RULE_WORD_ZIPF)

        corpus_words = {fold(w) for s in self.all_sentences for w in _WORD.findall(s)}
        pseudo = _pseudo_words(36_000, seed + "/names", corpus_words | excluded)
        self.first_names = pseudo[:2_000]
        self.last_names = pseudo[2_000:32_000]
        self.places = pseudo[32_000:]
        self.entities = [
            Entity(self.first_names[(k * 7919) % len(self.first_names)], last)
            for k, last in enumerate(self.last_names)
        ]
        # Articles mention people and places with Zipf s=1 (a few are everywhere);
        # rules name them with a flatter Zipf (people also watch the long tail).
        self.entity_zipf = Zipf(len(self.entities), 1.0)
        self.place_zipf = Zipf(len(self.places), 1.0)
        self.rule_entity_zipf = Zipf(len(self.entities), RULE_NAME_ZIPF)
        self.rule_place_zipf = Zipf(len(self.places), RULE_NAME_ZIPF)

    # -- samplers -------------------------------------------------------------

    def word(self, rng: random.Random) -> str:
        return self.words[self.word_zipf.draw(rng)]

    def entity(self, rng: random.Random) -> Entity:
        return self.entities[self.entity_zipf.draw(rng)]

    def place(self, rng: random.Random) -> str:
        return self.places[self.place_zipf.draw(rng)]

    def rule_entity(self, rng: random.Random) -> Entity:
        return self.entities[self.rule_entity_zipf.draw(rng)]

    def rule_place(self, rng: random.Random) -> str:
        return self.places[self.rule_place_zipf.draw(rng)]

    def phrase(self, rng: random.Random) -> tuple[str, ...]:
        return self.phrases[self.phrase_zipf.draw(rng)]

    def prefix(self, rng: random.Random) -> str:
        word = self.prefix_sources[self.prefix_zipf.draw(rng)]
        return word[: rng.randint(4, min(6, len(word) - 1))]


def _rank(item: tuple[object, int]) -> tuple[int, str]:
    return (-item[1], str(item[0]))


# -- articles -------------------------------------------------------------------


def _entity_sentence(world: World, rng: random.Random) -> str:
    template = rng.choice(ENTITY_TEMPLATES)
    return template.format(
        name=world.entity(rng).name,
        name2=world.entity(rng).name,
        place=world.place(rng),
        day=rng.choice(DAYS),
    )


def make_articles(
    count: int, world: World | None = None, seed: str = "newswatch-bench/articles"
) -> list[Article]:
    """``count`` articles of 3-5 KB of content each (UTF-8 bytes), reproducibly."""
    world = world or World()
    rng = random.Random(seed)
    start = datetime(2024, 3, 1, tzinfo=UTC)
    articles: list[Article] = []
    for i in range(count):
        main = rng.choices(world.source_names, world.source_weights)[0]
        target = rng.randint(3_000, 5_000)
        paragraphs: list[str] = []
        size = 0
        while size < target:
            sentences: list[str] = []
            for _ in range(rng.randint(2, 4)):
                source = main
                if rng.random() > 0.7:
                    source = rng.choices(world.source_names, world.source_weights)[0]
                sentences.append(rng.choice(world.sources[source]))
            if rng.random() < 0.45:
                sentences.insert(rng.randint(0, len(sentences)), _entity_sentence(world, rng))
            paragraph = " ".join(sentences)
            paragraphs.append(paragraph)
            size += len(paragraph.encode("utf-8")) + 2
        content = "\n\n".join(paragraphs)
        title_words = _WORD.findall(rng.choice(split_sentences(content) or [content]))
        n = rng.randint(5, 11)
        title = " ".join(title_words[:n])
        title = title[:1].upper() + title[1:]
        summary = " ".join(split_sentences(paragraphs[0])[:2])
        if len(summary) > 300:
            summary = summary[: summary.rfind(" ", 0, 300)] + " ..."
        feed_key, source_name = FEEDS[i % len(FEEDS)]
        entry_key = f"{feed_key}-{i:05d}"
        url = f"https://news.example.org/a/{entry_key}"
        articles.append(
            Article(
                feed_key=feed_key,
                entry_key=entry_key,
                story_key=hashlib.sha1(entry_key.encode()).hexdigest()[:16],
                title=title,
                summary=summary,
                content=content,
                link=url,
                canonical_url=url,
                author=AUTHORS[i % len(AUTHORS)],
                categories=CATEGORIES[i % len(CATEGORIES)],
                published=start + timedelta(minutes=7 * i),
                source=source_name,
                tags=("bench",),
            )
        )
    return articles


# -- rules ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Phrase:
    words: tuple[str, ...]
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Prefix:
    stem: str


@dataclass(frozen=True, slots=True)
class Near:
    left: str
    right: str
    distance: int


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]
    explicit: bool = True  # render "a AND b" rather than "a b"


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node
    dash: bool = False  # render "-word" rather than "NOT word"


Node = Word | Phrase | Prefix | Near | And | Or | Not


@dataclass(frozen=True, slots=True)
class GeneratedRule:
    name: str
    kind: str
    node: Node
    query: str


def render(node: Node, nested: bool = False) -> str:
    """Newswatch query syntax for ``node``; compound children are parenthesized."""
    match node:
        case Word(text, field):
            return f"{field}:{text}" if field else text
        case Phrase(words, field):
            quoted = '"' + " ".join(words) + '"'
            return f"{field}:{quoted}" if field else quoted
        case Prefix(stem):
            return stem + "*"
        case Near(left, right, distance):
            text = f"{left} NEAR/{distance} {right}"
            return f"({text})" if nested else text
        case And(items, explicit):
            explicit = explicit or any(isinstance(i, Not) and not i.dash for i in items)
            text = (" AND " if explicit else " ").join(render(i, True) for i in items)
            return f"({text})" if nested else text
        case Or(items):
            text = " OR ".join(render(i, True) for i in items)
            return f"({text})" if nested else text
        case Not(item, dash):
            return ("-" if dash else "NOT ") + render(item, True)
    raise TypeError(node)


# (kind, weight). Weights are a guess at what analysts write: mostly names and
# short keyword sets, some phrases and boolean groups, a little proximity.
RULE_KINDS: tuple[tuple[str, float], ...] = (
    ("word", 0.15),
    ("words", 0.16),
    ("and", 0.08),
    ("phrase", 0.10),
    ("phrase_and", 0.07),
    ("or", 0.06),
    ("or_and", 0.12),
    ("not", 0.10),
    ("near", 0.08),
    ("prefix", 0.04),
    ("field", 0.03),
    ("korean", 0.01),
)

# Share of rule terms drawn from the source texts (the rest: people, places). Every
# source-text word is in several percent of the articles, so they are used mostly
# next to a name ("Kravenor nuclear") and rarely alone.
CORPUS_ALONE = 0.01
CORPUS_WITH_NAME = 0.3
CORPUS_NEGATED = 0.5


class RuleGenerator:
    def __init__(self, world: World, seed: str = "newswatch-bench/rules") -> None:
        self.world = world
        self.rng = random.Random(seed)
        self.kinds = [k for k, _ in RULE_KINDS]
        self.weights = [w for _, w in RULE_KINDS]

    def _case(self, word: str) -> str:
        return word.lower() if self.rng.random() < 0.4 else word

    def term(self, corpus_share: float = CORPUS_ALONE) -> Word:
        rng, world = self.rng, self.world
        if rng.random() < corpus_share:
            return Word(self._case(world.word(rng)))
        if rng.random() < 0.85:
            return Word(self._case(world.rule_entity(rng).last))
        return Word(self._case(world.rule_place(rng)))

    def terms(self, n: int, corpus_share: float = CORPUS_ALONE) -> tuple[Word, ...]:
        """``n`` distinct terms; the first is a name or place unless ``corpus_share`` says."""
        out: dict[str, Word] = {}
        while len(out) < n:
            term = self.term(corpus_share if out else CORPUS_ALONE)
            out.setdefault(fold(term.text), term)
        return tuple(out.values())

    def phrase(self) -> Phrase:
        rng, world = self.rng, self.world
        if rng.random() < CORPUS_ALONE:
            return Phrase(tuple(self._case(w) for w in world.phrase(rng)))
        return Phrase(tuple(world.rule_entity(rng).name.split()))

    def near(self) -> Near:
        rng, world = self.rng, self.world
        distance = rng.choice((2, 3, 5, 5, 10))
        if rng.random() < CORPUS_ALONE:
            a, b, _gap = rng.choice(world.near_pairs)
            if rng.random() < 0.5:
                a, b = b, a
            return Near(self._case(a), self._case(b), distance)
        entity = world.rule_entity(rng)
        if rng.random() < 0.6:
            return Near(entity.last, entity.first, distance)
        return Near(entity.last, world.rule_place(rng), distance)

    def build(self, kind: str) -> Node:
        rng = self.rng
        if kind == "word":
            return self.term()
        if kind == "words":
            return And(self.terms(rng.choice((2, 2, 3)), CORPUS_WITH_NAME), explicit=False)
        if kind == "and":
            return And(self.terms(rng.choice((2, 3)), CORPUS_WITH_NAME), explicit=True)
        if kind == "phrase":
            return self.phrase()
        if kind == "phrase_and":
            items: list[Node] = [self.phrase(), self.term(CORPUS_WITH_NAME)]
            rng.shuffle(items)
            return And(tuple(items), explicit=rng.random() < 0.5)
        if kind == "or":
            return Or(tuple(self.term() for _ in range(rng.choice((2, 3)))))
        if kind == "or_and":
            group = Or(self.terms(rng.choice((2, 3, 4)), CORPUS_ALONE))
            ws = self.terms(rng.choice((1, 1, 2)), CORPUS_WITH_NAME)
            return And((group, *ws), explicit=rng.random() < 0.5)
        if kind == "not":
            positive = self.term()
            negative = self.term(CORPUS_NEGATED)
            if fold(positive.text) == fold(negative.text):
                return positive
            if rng.random() < 0.3:
                extra = self.term()
                if fold(extra.text) not in {fold(positive.text), fold(negative.text)}:
                    return And((Or((positive, extra)), Not(negative, dash=True)), explicit=False)
            dash = rng.random() < 0.5
            return And((positive, Not(negative, dash=dash)), explicit=not dash)
        if kind == "near":
            return self.near()
        if kind == "prefix":
            return And((Prefix(self._case(self.world.prefix(rng))), self.term()))
        if kind == "field":
            title = Word(self._case(self.world.word(rng)), field="title")
            if rng.random() < 0.3:
                return title
            return And((title, self.term()))
        if kind == "korean":
            first, second = rng.sample(KOREAN_KEYWORDS, 2)
            other = Word(second) if rng.random() < 0.3 else self.term()
            return And((Word(first), other), explicit=rng.random() < 0.5)
        raise ValueError(kind)

    def generate(self, count: int) -> list[GeneratedRule]:
        rules: list[GeneratedRule] = []
        for i in range(count):
            kind = self.rng.choices(self.kinds, self.weights)[0]
            node = self.build(kind)
            rules.append(GeneratedRule(f"r{i:06d}", kind, node, render(node)))
        return rules


def make_rules(
    count: int, world: World | None = None, seed: str = "newswatch-bench/rules"
) -> list[GeneratedRule]:
    """``count`` rules; a smaller count gives a prefix of a larger one."""
    return RuleGenerator(world or World(), seed).generate(count)


def sample(items: Sequence[Article], k: int, seed: str = "sample") -> list[int]:
    """Indices of a reproducible sample of ``k`` items."""
    return sorted(random.Random(seed).sample(range(len(items)), min(k, len(items))))

"""Reading YAML that cannot hurt: bounded size, nesting and alias expansion.

PyYAML's composer recurses once per nesting level (10,000 nested flow lists
raise RecursionError), and an alias is a second reference to one node, which
any walk over the data (ours, then pydantic's) expands again: 9 levels of 10
aliases each are 10**9 values written in a few hundred bytes (an "alias
bomb", YAML's billion laughs). So we read the parser's event stream
(libyaml's C parser when PyYAML has it, else PyYAML's own, neither recurses)
and build the values with an explicit stack, counting as we go, and stop at
the first limit with the file and line that crossed it.

Alongside the values we build the ``Loc`` tree (file and line of every
mapping entry and sequence item) in the same pass. An alias shares the value
it names (no copy) and costs its full expanded size in the budget, because
everything downstream walks it as a tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor

from newswatch.config.problems import ConfigError, Loc, Problem
from newswatch.rules.text import display_width

# A config of 10,000 feeds and 10,000 rules is about 1.5 MB; ten times that
# is no hand-made file, and reading past it only risks memory.
MAX_FILE_BYTES: Final = 10 * 1024 * 1024
# The deepest real setting is a handful of levels (channels.NAME.smtp.password);
# 100 keeps every real file and stays far from Python's recursion limit in
# the code that walks the values afterwards.
MAX_DEPTH: Final = 100
# Aliases may add this many values in all, or as many as the file writes out
# itself when that is more: reusing defaults stays free, while a bomb (whose
# whole point is expanding many times what it writes) stops at once.
ALIAS_NODE_BUDGET: Final = 10_000
# Values per document, aliases expanded: bounds everything downstream
# (interpolation, validation) to a few seconds whatever the file holds.
MAX_DOCUMENT_NODES: Final = 1_000_000

_Loader: Final[type[Any]] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR: Final = "tag:yaml.org,2002:str"
_MERGE: Final = "tag:yaml.org,2002:merge"
_PLAIN_COLLECTION_TAGS: Final = frozenset(
    {None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}
)
_CONSTRUCTORS: Final = SafeConstructor.yaml_constructors
_NO_KEY: Final = object()  # a mapping frame waiting for its next key
MERGE: Final = object()  # the value of a `<<` key


@dataclass(frozen=True, slots=True)
class Parsed:
    """A YAML file's values and their locations (``None``, ``None``: empty)."""

    data: Any
    loc: Loc | None


def read_capped(path: Path, limit: int | None = None) -> bytes:
    """The file's bytes; ``ValueError`` past ``limit`` (default ``MAX_FILE_BYTES``;
    nothing beyond it is read)."""
    limit = MAX_FILE_BYTES if limit is None else limit
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"file is larger than {limit // (1024 * 1024)} MiB; not read")
    return data


def load_file(path: Path) -> Parsed:
    """Read and parse one YAML file; ``ConfigError`` names the file and line."""
    try:
        raw = read_capped(path)
    except OSError as exc:
        raise ConfigError(
            [Problem(str(path), 0, "", f"cannot read: {exc.strerror or exc}")]
        ) from exc
    except ValueError as exc:
        raise ConfigError([Problem(str(path), 0, "", str(exc))]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        message = f"not valid UTF-8 (byte {exc.start}); save the file as UTF-8"
        raise ConfigError([Problem(str(path), line, "", message)]) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, file: str) -> Parsed:
    """Parse one YAML document from ``text`` (``file`` names it in errors)."""
    builder = _Builder(text, file)
    try:
        return builder.run()
    except _Stop as stop:
        raise ConfigError([Problem(file, stop.line, "", stop.message)]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([syntax_problem(exc, text, file)]) from None
    except yaml.YAMLError as exc:  # the reader's "special characters" and the like
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 0
        raise ConfigError([Problem(file, line, "", f"invalid YAML: {exc}")]) from None


class _Stop(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message


@dataclass(slots=True)
class _Frame:
    """A sequence or mapping being built."""

    value: Any  # list or dict
    locs: Any  # list[Loc] or dict[Any, Loc]
    line: int
    anchor: str | None
    size: int = 1
    key: Any = _NO_KEY
    key_line: int = 0
    merges: list[tuple[Any, Loc, int]] = field(default_factory=list)


class _Builder:
    """Events -> values and ``Loc`` tree, with the limits above."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.loader = _Loader(text)
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, Loc, int]] = {}
        self.written = 0
        self.from_aliases = 0
        self.root: tuple[Any, Loc] | None = None

    def run(self) -> Parsed:
        loader = self.loader
        try:
            loader.get_event()  # StreamStart
            if loader.check_event(yaml.StreamEndEvent):
                return Parsed(None, None)
            loader.get_event()  # DocumentStart
            while self.root is None:
                self.step(loader.get_event())
            loader.get_event()  # DocumentEnd
            if not loader.check_event(yaml.StreamEndEvent):
                line = loader.peek_event().start_mark.line + 1
                raise _Stop(line, "a second YAML document (---); put everything in one")
        finally:
            loader.dispose()
        value, loc = self.root
        return Parsed(value, loc)

    # -------------------------------------------------------------- events

    def step(self, ev: Any) -> None:
        kind = type(ev)
        line = ev.start_mark.line + 1
        if kind is yaml.ScalarEvent:
            self.count(line)
            self.attach(self.scalar(ev, line), Loc(self.file, line), 1, ev.anchor, line)
        elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
            self.open(ev, line, kind is yaml.SequenceStartEvent)
        elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
            frame = self.stack.pop()
            if frame.merges:
                self.apply_merges(frame)
            loc = Loc(self.file, frame.line, frame.locs)
            self.attach(frame.value, loc, frame.size, frame.anchor, frame.line)
        elif kind is yaml.AliasEvent:
            self.alias(ev.anchor, line)
        else:  # pragma: no cover - the parser emits nothing else inside a document
            raise _Stop(line, f"unexpected YAML event {kind.__name__}")

    def count(self, line: int) -> None:
        self.written += 1
        self.check_total(line)

    def check_total(self, line: int) -> None:
        if self.written + self.from_aliases > MAX_DOCUMENT_NODES:
            raise _Stop(
                line,
                f"more than {MAX_DOCUMENT_NODES:,} values (aliases expanded); "
                "split the configuration into smaller files",
            )

    def open(self, ev: Any, line: int, is_seq: bool) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise _Stop(line, f"nested more than {MAX_DEPTH} levels deep")
        if ev.tag not in _PLAIN_COLLECTION_TAGS:
            raise _Stop(
                line,
                f"YAML tag {_short(ev.tag)} is not supported here; use a plain list or mapping",
            )
        if self.stack and self.stack[-1].key is _NO_KEY and isinstance(self.stack[-1].value, dict):
            raise _Stop(line, "a key must be plain text, not a list or mapping")
        self.count(line)
        if is_seq:
            self.stack.append(_Frame([], [], line, ev.anchor))
        else:
            self.stack.append(_Frame({}, {}, line, ev.anchor))

    def scalar(self, ev: Any, line: int) -> Any:
        tag = ev.tag
        if tag is None or tag == "!":
            if not ev.implicit[0]:  # quoted: always text
                return ev.value
            tag = self.loader.resolve(yaml.ScalarNode, ev.value, ev.implicit)
        if tag == _STR:
            return ev.value
        if tag == _MERGE:
            return MERGE
        construct = _CONSTRUCTORS.get(tag)
        if construct is None or tag in ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"):
            raise _Stop(line, f"YAML tag {_short(ev.tag)} is not supported here")
        node = yaml.ScalarNode(tag, ev.value, ev.start_mark, ev.end_mark, ev.style)
        try:
            return construct(self.loader, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            shown = ev.value if len(ev.value) <= 40 else ev.value[:40] + "..."
            raise _Stop(
                line, f"{shown!r} is not a valid {_short(tag)}; put it in quotes to make it text"
            ) from None

    def alias(self, name: str, line: int) -> None:
        found = self.anchors.get(name)
        if found is None:
            raise _Stop(line, f"unknown alias *{name} (no &{name} anchor before it)")
        value, loc, size = found
        self.from_aliases += size
        budget = max(ALIAS_NODE_BUDGET, self.written)
        if self.from_aliases > budget:
            raise _Stop(
                line,
                f"aliases expand to more than {budget:,} values (at *{name}); "
                "this looks like an alias bomb: write the values out instead",
            )
        self.check_total(line)
        self.attach(value, Loc(self.file, line, loc.children), size, None, line)

    # ------------------------------------------------------------ building

    def attach(self, value: Any, loc: Loc, size: int, anchor: str | None, line: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (value, loc, size)
        if not self.stack:
            self.root = (value, loc)
            return
        top = self.stack[-1]
        top.size += size
        if isinstance(top.value, list):
            top.value.append(value)
            top.locs.append(loc)
            return
        if top.key is _NO_KEY:
            if isinstance(value, list | dict):  # an alias to a collection used as a key
                raise _Stop(line, "a key must be plain text, not a list or mapping")
            top.key, top.key_line = value, line
            return
        key, top.key = top.key, _NO_KEY
        if key is MERGE:
            top.merges.append((value, loc, top.key_line))
            return
        if key in top.value:
            first = top.locs[key].line
            raise _Stop(top.key_line, f"duplicate key {key!r} (first at line {first})")
        top.value[key] = value
        top.locs[key] = Loc(self.file, top.key_line, loc.children)

    def apply_merges(self, frame: _Frame) -> None:
        """``<<: *defaults`` (or a list of them): keys written in the mapping win,
        then earlier merged mappings over later ones (YAML's merge key)."""
        for value, loc, line in frame.merges:
            sources = value if isinstance(value, list) else [value]
            if not all(isinstance(s, dict) for s in sources):
                raise _Stop(line, "'<<' merges a mapping (or a list of mappings) into this one")
            for i, source in enumerate(sources):
                source_loc = loc.child(i) if isinstance(value, list) else loc
                for key, item in source.items():
                    if key not in frame.value:
                        frame.value[key] = item
                        inner = source_loc.child(key) if source_loc is not None else None
                        children = inner.children if inner is not None else None
                        frame.locs[key] = Loc(self.file, line, children)


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag


# ------------------------------------------------------------------ syntax errors

_HINTS: Final = (
    (
        "mapping values are not allowed",
        "text containing ': ' needs quotes; or check the indentation",
    ),
    (
        "could not find expected ':'",
        "a line in a mapping needs 'key: value'; check the indentation",
    ),
)
TAB_HINT: Final = "YAML does not allow tabs for indentation; indent with spaces"
# Snippets show at most this much of a long line, around the caret.
SNIPPET_WIDTH: Final = 100


def syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> Problem:
    """``file:line: invalid YAML: reason`` with the line and a caret under the column."""
    mark = exc.problem_mark or exc.context_mark
    reason = exc.problem or exc.context or "cannot be parsed"
    if "maximum nesting depth" in reason:  # libyaml's own limit, met before ours
        reason = f"nested more than {MAX_DEPTH} levels deep"
    if mark is None:  # pragma: no cover - PyYAML's marked errors carry a mark
        return Problem(file, 0, "", f"invalid YAML: {reason}")
    lines = text.splitlines()
    # At the end of the stream the mark sits past the last line: show that one.
    row = min(mark.line, len(lines) - 1) if lines else 0
    source = lines[row] if lines else ""
    column = mark.column if row == mark.line else len(source)
    message = f"invalid YAML: {reason}"
    context = exc.context_mark
    if exc.context and context is not None and context.line != row:
        message += f" ({exc.context} at line {context.line + 1})"
    hint = _hint(reason, source, lines, mark.line)
    if hint:
        message += f"; {hint}"
    return Problem(file, row + 1, "", f"{message}\n{caret_lines(source, column)}")


def caret_lines(source: str, column: int) -> str:
    """The line (tabs shown as spaces, long lines cut around the spot) and a caret."""
    start = max(0, column - SNIPPET_WIDTH // 2) if len(source) > SNIPPET_WIDTH else 0
    cut = source[start : start + SNIPPET_WIDTH]
    before = source[start:column]
    lead = "..." if start else ""
    tail = "..." if start + SNIPPET_WIDTH < len(source) else ""
    pad = " " * (len(lead) + display_width(before.expandtabs(4)))
    return f"    {lead}{cut.expandtabs(4)}{tail}\n    {pad}^"


def _hint(reason: str, source: str, lines: list[str], row: int) -> str:
    near = lines[max(0, row - 1) : row + 1] or [source]
    if "\t" in reason or any("\t" in ln[: len(ln) - len(ln.lstrip())] for ln in near):
        return TAB_HINT
    for needle, hint in _HINTS:
        if needle in reason:
            return hint
    return ""

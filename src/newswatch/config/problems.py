"""Where each configuration value came from, and the problems that point there.

A ``Loc`` tree mirrors the YAML data: every mapping entry and sequence item
has the file and line it was written on. Rule files and OPML feeds are
grafted into the main file's tree one subtree per rule or feed, so merging
and looking up stay linear however many rules there are (a flat map of
every path, re-keyed per rule, made loading quadratic).

A ``Problem`` is one error or warning, ``file:line: field.path: message``;
``ConfigError`` carries the errors that stop a configuration from loading.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

DocPath = tuple[Any, ...]  # keys (str, or whatever a YAML key was) and list indices
Severity = Literal["error", "warning"]


class Loc:
    """One node's file and line; ``children`` a dict (mapping), a list (sequence)
    or None (a scalar, or an alias whose insides are not tracked)."""

    __slots__ = ("children", "file", "line")

    def __init__(
        self, file: str, line: int, children: dict[Any, Loc] | list[Loc] | None = None
    ) -> None:
        self.file = file
        self.line = line
        self.children = children

    def child(self, key: Any) -> Loc | None:
        children = self.children
        if isinstance(children, list):
            if type(key) is int and 0 <= key < len(children):
                return children[key]
            return None
        if isinstance(children, dict):
            try:
                return children.get(key)
            except TypeError:  # an unhashable part never names a key
                return None
        return None

    def __repr__(self) -> str:
        return f"Loc({self.file!r}, {self.line})"


class Locations:
    """The location tree of a whole configuration, main file and rule files."""

    __slots__ = ("root",)

    def __init__(self, root: Loc | None) -> None:
        self.root = root

    def where(self, path: DocPath) -> tuple[str, int] | None:
        """File and line of ``path``, or of its deepest ancestor that has one."""
        node = self.root
        if node is None:
            return None
        for part in path:
            found = node.child(part)
            if found is None:
                break
            node = found
        return node.file, node.line

    def problem(self, path: DocPath, message: str, severity: Severity = "error") -> Problem:
        file, line = self.where(path) or ("", 0)
        return Problem(file, line, dotted(path), message, severity)


def dotted(path: Iterable[Any]) -> str:
    """``('rules', 3, 'notify', 0)`` -> ``rules[3].notify[0]``."""
    out = ""
    for part in path:
        if type(part) is int:
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@dataclass(frozen=True, slots=True)
class Problem:
    """One error or warning. ``line`` is 1-based (0: unknown), ``path`` the
    dotted field (empty: the file as a whole)."""

    file: str
    line: int
    path: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else ""
        if self.file and not self.line:
            where = f"{self.file}: "
        label = "warning: " if self.severity == "warning" else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{label}{field}{self.message}"

    def to_json(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "path": self.path, "message": self.message}


class ConfigError(Exception):
    """One or more problems in the configuration, each naming file, line and field.

    ``details`` holds the ``Problem`` values; ``problems`` the same as lines of
    text (``file:line: field: message``) for logs and the terminal.
    """

    def __init__(self, problems: Sequence[Problem | str]) -> None:
        self.details = [p if isinstance(p, Problem) else Problem("", 0, "", p) for p in problems]
        self.problems = [str(p) for p in self.details]
        super().__init__("\n".join(self.problems))

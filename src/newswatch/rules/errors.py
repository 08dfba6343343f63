"""QueryError: a bad rule, said with the rule's name and a caret under the spot."""

from __future__ import annotations

from newswatch.rules.text import display_width


class QueryError(ValueError):
    """A watch rule (or an alias) that cannot be compiled.

    ``rule`` is the rule's name (the alias's name when ``key == "aliases"``),
    ``key`` which part of it failed (``query``, ``all``, ``any``, ``none``,
    ``aliases``; ``name`` for a duplicate rule name), ``index`` the list item
    for list forms and aliases, ``text`` the string that failed and
    ``position`` the 0-based character offset in ``text`` the caret points at.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str = "",
        key: str = "query",
        index: int | None = None,
        text: str = "",
        position: int | None = None,
    ) -> None:
        self.message = message
        self.rule = rule
        self.key = key
        self.index = index
        self.text = text
        self.position = position
        super().__init__(message)

    def with_context(self, *, rule: str, key: str, index: int | None = None) -> QueryError:
        """The same error, told about the rule (and list item) it came from."""
        return QueryError(
            self.message,
            rule=rule,
            key=key,
            index=index,
            text=self.text,
            position=self.position,
        )

    def __str__(self) -> str:
        if self.key == "aliases":
            head = f"alias '{self.rule}'"
            if self.index is not None:
                head += f" (entry {self.index})"
        elif self.rule:
            head = f"rule '{self.rule}'"
            if self.key not in ("query", "name"):
                head += (
                    f" ({self.key}[{self.index}])" if self.index is not None else f" ({self.key})"
                )
        else:
            head = ""
        out = f"{head}: {self.message}" if head else self.message
        if self.position is None or not self.text:
            return out
        # Show the line that holds the position, with the caret under it.
        line_start = self.text.rfind("\n", 0, self.position) + 1
        line_end = self.text.find("\n", self.position)
        line = self.text[line_start : line_end if line_end >= 0 else len(self.text)]
        pad = " " * display_width(self.text[line_start : self.position])
        return f"{out}\n    {line}\n    {pad}^"

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only fields when pickled
        return (_rebuild, (self.message, self.rule, self.key, self.index, self.text, self.position))


def _rebuild(
    message: str, rule: str, key: str, index: int | None, text: str, position: int | None
) -> QueryError:
    return QueryError(message, rule=rule, key=key, index=index, text=text, position=position)

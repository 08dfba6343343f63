"""Templates: the shipped defaults, a user folder that overrides them, and
the escaping each platform's markup needs.

Every template (ours and the user's) renders in jinja2's immutable sandbox
with ``StrictUndefined``: a template can read the context, not change it or
reach Python internals, and a misspelt variable is an error, not an empty
string. User templates are compiled and test-rendered when the configuration
loads (``check_templates``), so a template error is a config error with file
and line, never a failed send at 3 a.m.

Escaping: feed text is hostile, and each platform has its own markup. The
renderer hands templates values already escaped for the platform, as
``Markup``, and ``autoescape`` is on with a ``finalize`` that escapes any
other value a template computes with the platform's escape. So every
``{{ value }}`` is escaped exactly once for its platform, and feed text such
as ``{{ 7*7 }}`` or ``{% raw %}`` is data, shown literally: it is never
template source.

Lookup: ``<platform>/<kind>.<part>.j2`` first (e.g. ``slack/digest.item.j2``),
then ``<platform>/<part>.j2``; the user folder before the shipped one.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from newswatch.model import NotificationKind

__all__ = [
    "HREF_ESCAPES",
    "MARKUPS",
    "Markup",
    "TemplateError",
    "Templates",
    "escape_for",
    "escape_href",
]


def _text(value: str) -> str:
    return value


def _html(value: str) -> str:
    return html.escape(value, quote=True)


def _slack(value: str) -> str:
    # Slack's mrkdwn: only these three are control characters, and escaping
    # them is what keeps <!channel>, <@U123> and <url|text> in a headline text.
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Markdown that Discord and Teams render: emphasis, code, quotes, headings,
# lists, masked links, spoilers, and "<" that opens <@id> / <#id> / <t:..>.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_~|>\[\]()#<:!-])")
# Defence in depth beside Discord's allowed_mentions: a zero-width space
# after "@" keeps @everyone / @here from ever reading as a mention.
_AT_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)
_ZWSP = "\u200b"


def _markdown(value: str) -> str:
    return _AT_MENTION.sub(lambda m: f"@{_ZWSP}{m.group(1)}", _MARKDOWN_SPECIAL.sub(r"\\\1", value))


# Telegram turns "@name" (4+ characters) outside code and links into a
# mention entity that notifies that user; a zero-width space after an "@"
# that could start one keeps a headline's "@everyone" or "@someone" text.
_TG_AT = re.compile(r"(?<!\w)@")


def _telegram(value: str) -> str:
    # Telegram's HTML: <, > and & must be entities (&lt; &gt; &amp; &quot;
    # and numeric ones are all it decodes); quotes too, inside href="...".
    return _TG_AT.sub("@" + _ZWSP, html.escape(value, quote=True))


# Platform markup -> its escape function.
MARKUPS: dict[str, Callable[[str], str]] = {
    "text": _text,
    "html": _html,
    "slack": _slack,
    "markdown": _markdown,
    "telegram": _telegram,
}

# Link targets are escaped for where they stand: an HTML attribute, Slack's
# <url|text>, Markdown's [text](url). The renderer percent-encodes the
# characters that would end a link first (render._href), so a Markdown
# target needs nothing more (a backslash would become part of the URL), and
# a Telegram href must not get the zero-width space of mention-breaking.
HREF_ESCAPES: dict[str, Callable[[str], str]] = {
    **MARKUPS,
    "markdown": _text,
    "telegram": _html,
}


def escape_for(markup: str, value: object) -> Markup:
    """``value`` escaped for ``markup`` (``Markup`` passes through as is)."""
    if isinstance(value, Markup):
        return value
    return Markup(MARKUPS[markup]("" if value is None else str(value)))


def escape_href(markup: str, href: str) -> Markup:
    """A link target (already percent-encoded by the renderer) for ``markup``."""
    return Markup(HREF_ESCAPES[markup](href))


class TemplateError(Exception):
    """A template failed to compile or render; ``str()`` names file and line."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file, self.line, self.reason = file, line, reason
        super().__init__(f"{file}:{line}: {reason}" if line else f"{file}: {reason}")


@dataclass(frozen=True, slots=True)
class _Platform:
    markup: str


# Template folder name -> its markup. A channel renders with its folder.
PLATFORMS: dict[str, _Platform] = {
    "text": _Platform("text"),
    "email": _Platform("html"),
    "slack": _Platform("slack"),
    "discord": _Platform("markdown"),
    "telegram": _Platform("telegram"),
    "teams": _Platform("markdown"),
    "matrix": _Platform("html"),
    "ntfy": _Platform("text"),
}


class Templates:
    """The template set: shipped defaults, overridden by ``user_dir``."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir
        loaders: list[jinja2.BaseLoader] = []
        if user_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(user_dir)))
        loaders.append(jinja2.PackageLoader("newswatch", "templates"))
        self._loader = jinja2.ChoiceLoader(loaders)
        self._envs = {name: self._env(p.markup) for name, p in PLATFORMS.items()}

    def _env(self, markup: str) -> jinja2.Environment:
        escape = MARKUPS[markup]

        def finalize(value: object) -> object:
            if isinstance(value, Markup) or value is None:
                return value
            return Markup(escape(str(value)))

        return ImmutableSandboxedEnvironment(
            loader=self._loader,
            autoescape=True,
            finalize=finalize,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )

    def markup(self, platform: str) -> str:
        return PLATFORMS[platform].markup

    def escape(self, platform: str, value: object) -> Markup:
        return escape_for(PLATFORMS[platform].markup, value)

    def escape_href(self, platform: str, href: str) -> Markup:
        return escape_href(PLATFORMS[platform].markup, href)

    def has(self, platform: str, part: str) -> bool:
        return any(self._exists(name) for name in _names(platform, None, part))

    def render(
        self,
        platform: str,
        kind: NotificationKind | None,
        part: str,
        context: Mapping[str, Any],
    ) -> str:
        """Render ``<platform>/[<kind>.]<part>.j2`` with ``context``."""
        env = self._envs[platform]
        names = _names(platform, kind, part)
        try:
            template = env.select_template(names)
        except jinja2.TemplatesNotFound as exc:
            raise TemplateError("templates", 0, f"no template {' or '.join(names)}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(*_where(exc.filename or exc.name, exc.lineno, exc.message)) from exc
        try:
            return template.render(context)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(*_where(exc.filename or exc.name, exc.lineno, exc.message)) from exc
        except Exception as exc:  # an undefined name, a sandbox refusal, a filter error
            name, line = _render_place(exc, template)
            raise TemplateError(*_where(name, line, f"{type(exc).__name__}: {exc}")) from exc

    def _exists(self, name: str) -> bool:
        try:
            self._loader.get_source(self._envs["text"], name)
        except jinja2.TemplateNotFound:
            return False
        return True

    def parts(self, platform: str) -> set[str]:
        """The parts a platform's templates define (``item`` for
        ``slack/item.j2`` and ``slack/digest.item.j2``), shipped and user."""
        found: set[str] = set()
        for name in self._loader.list_templates():
            folder, _, file = name.partition("/")
            if folder == platform and file.endswith(".j2"):
                stem = file.removesuffix(".j2")
                found.add(stem.split(".", 1)[1] if stem.split(".", 1)[0] in _KINDS else stem)
        return found

    def user_templates(self) -> list[str]:
        """Names of the user's template files (relative to ``user_dir``)."""
        if self.user_dir is None or not self.user_dir.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.user_dir)) for p in self.user_dir.rglob("*.j2") if p.is_file()
        )


_KINDS = frozenset(k.value for k in NotificationKind)


def _names(platform: str, kind: NotificationKind | None, part: str) -> list[str]:
    names = [f"{platform}/{kind.value}.{part}.j2"] if kind is not None else []
    return [*names, f"{platform}/{part}.j2"]


def _where(name: str | None, line: int | None, message: str | None) -> tuple[str, int, str]:
    return name or "template", line or 0, message or "template error"


def _render_place(exc: BaseException, template: jinja2.Template) -> tuple[str | None, int | None]:
    """The template file and line a render error happened on: jinja rewrites
    the traceback so template frames carry the template's own file and line
    (an included template names itself)."""
    name, line = template.filename or template.name, None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename == template.filename:
            name, line = filename, tb.tb_lineno
        tb = tb.tb_next
    return name, line

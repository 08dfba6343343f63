"""What a configuration pulls in from elsewhere: rule files, OPML, ``${VAR}`` secrets.

Each reads bounded input (``yamlsafe.read_capped``) and reports problems by
file and line, never by a secret's value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from newswatch.config.problems import DocPath, Locations, Problem
from newswatch.config.yamlsafe import read_capped

# A secret file holds a password or a token; a certificate bundle is the
# largest thing anyone puts there.
MAX_SECRET_FILE_BYTES: Final = 1024 * 1024
_ENV_RE: Final = re.compile(r"\$\{([^}]*)\}")
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rule_sources(raw: Any, base: Path) -> tuple[list[Path | int], list[Path]]:
    """`rules:` may be a folder, a file, or a list mixing files and inline rules.

    Returns the sources in order (a file path, or the index of an inline rule
    in the `rules:` list) and the folders read (watched for new files).
    """
    items = raw if isinstance(raw, list) else [raw]
    out: list[Path | int] = []
    folders: list[Path] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            p = (base / item).resolve()
            if p.is_dir():
                folders.append(p)
                out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml")))
            else:
                out.append(p)
        else:
            out.append(i)
    return out, folders


def read_opml(path: Path) -> list[dict[str, Any]]:
    """Feeds listed in an OPML file: url, name and tags (from `category`)."""
    import xml.etree.ElementTree as ET

    try:
        data = read_capped(path)
    except OSError as exc:
        raise OSError(f"cannot read OPML file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    try:
        # expat (3.11+) refuses entity-expansion bombs itself.
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"{path}: not valid OPML: {exc}") from exc
    feeds = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if not url:
            continue
        feed: dict[str, Any] = {"url": url.strip()}
        name = outline.get("title") or outline.get("text")
        if name:
            feed["name"] = name.strip()
        categories = [c.strip().strip("/") for c in (outline.get("category") or "").split(",")]
        feed["tags"] = [c for c in categories if c]
        feeds.append(feed)
    if not feeds:
        raise ValueError(f"{path}: no feeds (outline elements with xmlUrl) found")
    return feeds


def interpolate(
    value: Any,
    env: Mapping[str, str],
    locations: Locations,
    problems: list[Problem],
    hidden: set[DocPath],
    secret_files: set[Path] | None = None,
) -> Any:
    """A copy of ``value`` with ${VAR}, ${VAR:-default} and ${file:/path} replaced
    in strings. Errors name the variable, never a value; the paths of the
    strings replaced go into ``hidden`` so no later message quotes them, and
    the files read into ``secret_files`` (their modes are checked)."""
    interpolator = _Interpolator(env, locations, problems, hidden)
    out = interpolator.walk(value, [])
    if secret_files is not None:
        secret_files.update(interpolator.files)
    return out


class _Interpolator:
    def __init__(
        self,
        env: Mapping[str, str],
        locations: Locations,
        problems: list[Problem],
        hidden: set[DocPath],
    ) -> None:
        self.env = env
        self.locations = locations
        self.problems = problems
        self.hidden = hidden
        self.files: set[Path] = set()

    def walk(self, value: Any, path: list[Any]) -> Any:
        # ``path`` is one list pushed and popped on the way (a tuple per value
        # would cost more than the walk itself on 10,000 rules).
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                path.append(k)
                out[k] = self.walk(v, path)
                path.pop()
            return out
        if isinstance(value, list):
            items = []
            for i, v in enumerate(value):
                path.append(i)
                items.append(self.walk(v, path))
                path.pop()
            return items
        if not isinstance(value, str) or "${" not in value:
            return value
        at = tuple(path)
        self.hidden.add(at)
        return _ENV_RE.sub(lambda m: self.replace(m.group(1), at), value)

    def replace(self, expr: str, at: DocPath) -> str:
        if expr.startswith("file:"):
            file = expr[5:]
            self.files.add(Path(file))
            try:
                return read_capped(Path(file), MAX_SECRET_FILE_BYTES).decode("utf-8").strip()
            except OSError as exc:
                self.fail(at, f"cannot read secret file {file}: {exc.strerror}")
            except (ValueError, UnicodeDecodeError):
                self.fail(at, f"secret file {file} is not UTF-8 text of at most 1 MiB")
            return ""
        name, sep, default = expr.partition(":-")
        if not _NAME_RE.fullmatch(name):
            self.fail(at, f"${{{expr}}} is not a valid variable reference")
            return ""
        if self.env.get(name, "") != "":
            return self.env[name]
        if sep:
            return default
        self.fail(at, f"environment variable {name} is not set")
        return ""

    def fail(self, at: DocPath, message: str) -> None:
        self.problems.append(self.locations.problem(at, message))

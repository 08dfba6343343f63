"""Who else can read the files that hold newswatch's secrets and state.

newswatch creates its state database 0600 in folders it makes 0700
(``store._dialect.private_file``; SQLite gives the -wal and -shm files the
database's mode). Files that existed before keep the mode someone chose, so
``newswatch check`` and ``newswatch run`` warn when one of them is readable
or writable by other users:

- the SQLite state database and its -wal/-shm files (what people watch,
  every matched article);
- every ``${file:...}`` secret file the configuration reads;
- a configuration or rule file in which a secret is written out (not
  ``${VAR}``): an SMTP password, a webhook URL or header, a feed URL with
  credentials or a query, a state URL with a password.

Group access is not warned about: a service group is a common, deliberate
choice. ``exposed`` takes the stat function, so tests need no real modes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url

from newswatch.config import LoadedConfig, Problem
from newswatch.config.problems import DocPath, dotted

# "Others" may read or write: the bits a warning is about.
_OTHERS = stat.S_IROTH | stat.S_IWOTH

Stat = Callable[[Path], os.stat_result]


def open_to_others(mode: int) -> bool:
    """Whether a file mode lets users other than the owner and group in."""
    return bool(mode & _OTHERS)


def state_files(url: str) -> list[Path]:
    """The files of a SQLite state URL (database, -wal, -shm); none for
    PostgreSQL or memory."""
    try:
        parsed = make_url(url)
    except Exception:  # an unparseable URL is reported when it is opened
        return []
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return []
    db = Path(parsed.database).expanduser()
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


def secret_paths(loaded: LoadedConfig) -> Iterator[DocPath]:
    """Where the configuration holds a secret written out in a file (not
    from ``${...}``): document paths."""
    config = loaded.config
    found: list[DocPath] = list(_secrets_in(config.channels, ("channels",)))
    for i, feed in enumerate(config.feeds):
        if feed.url is not None and _url_has_secret(feed.url):
            found.append(("feeds", i, "url"))
    try:
        if make_url(config.state).password:
            found.append(("state",))
    except Exception:
        pass
    for path in found:
        if not any(path[: n + 1] in loaded.hidden for n in range(len(path))):
            yield path


def _secrets_in(value: Any, path: DocPath) -> Iterator[DocPath]:
    if isinstance(value, SecretStr):
        if value.get_secret_value():
            yield path
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _secrets_in(getattr(value, name), (*path, info.alias or name))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _secrets_in(item, (*path, key))
    elif isinstance(value, tuple | list):
        for i, item in enumerate(value):
            yield from _secrets_in(item, (*path, i))


def _url_has_secret(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(parts.username or parts.password or parts.query)


def exposed(loaded: LoadedConfig, state_url: str, stat_: Stat = Path.stat) -> list[Problem]:
    """Warnings for every file above that others can read or write."""
    problems: list[Problem] = []
    for path in state_files(state_url):
        mode = _mode(path, stat_)
        if mode is not None and open_to_others(mode):
            problems.append(
                Problem(
                    str(path),
                    0,
                    "state",
                    f"the state database is open to other users (mode {mode:04o}); "
                    f"chmod 600 {path}",
                    "warning",
                )
            )
    for path in loaded.secret_files:
        mode = _mode(path, stat_)
        if mode is not None and open_to_others(mode):
            problems.append(
                Problem(
                    str(path),
                    0,
                    "",
                    f"this secret file is open to other users (mode {mode:04o}); chmod 600 {path}",
                    "warning",
                )
            )
    by_file: dict[str, list[tuple[int, DocPath]]] = {}
    for doc_path in secret_paths(loaded):
        where = loaded.locations.where(doc_path)
        if where is not None and where[0]:
            by_file.setdefault(where[0], []).append((where[1], doc_path))
    for file, places in sorted(by_file.items()):
        mode = _mode(Path(file), stat_)
        if mode is None or not open_to_others(mode):
            continue
        places.sort(key=lambda p: p[0])
        line, first = places[0]
        others = [dotted(p) for _, p in places[1:4]] + (["..."] if len(places) > 4 else [])
        also = f" (and {', '.join(others)})" if others else ""
        problems.append(
            Problem(
                file,
                line,
                dotted(first),
                f"a secret is written out here{also}, and this file is open to other users "
                f"(mode {mode:04o}): chmod 600 {file}, or write it as ${{VAR}} or ${{file:...}}",
                "warning",
            )
        )
    return problems


def _mode(path: Path, stat_: Stat) -> int | None:
    try:
        return stat.S_IMODE(stat_(path).st_mode)
    except OSError:
        return None

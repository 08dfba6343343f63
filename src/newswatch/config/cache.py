"""Parsed configuration files kept between loads, so a reload parses only what changed."""

from __future__ import annotations

from pathlib import Path

from newswatch.config.problems import ConfigError
from newswatch.config.yamlsafe import Parsed, load_file

_Stamp = tuple[int, int, int]  # st_mtime_ns, st_size, st_ino


class ConfigCache:
    """Parsed YAML files kept between loads, each under its (mtime, size, inode).

    The daemon keeps one and passes it to every reload, so a reload after
    one rule file changed parses that file only. Entries of files a load no
    longer reads are dropped. One load at a time (not thread-safe).
    """

    def __init__(self) -> None:
        self._files: dict[Path, tuple[_Stamp, Parsed | ConfigError]] = {}
        self._used: set[Path] = set()
        self.hits = 0
        self.misses = 0

    def parse(self, path: Path) -> Parsed:
        """``load_file(path)``, or its result of last time if the file is unchanged."""
        self._used.add(path)
        try:
            st = path.stat()
        except OSError:
            return load_file(path)  # raises the "cannot read" problem
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        found = self._files.get(path)
        if found is not None and found[0] == stamp:
            self.hits += 1
            result = found[1]
        else:
            self.misses += 1
            try:
                result = load_file(path)
            except ConfigError as exc:
                result = exc
            self._files[path] = (stamp, result)
        if isinstance(result, ConfigError):
            raise ConfigError(result.details)
        return result

    def start(self) -> None:
        self._used = set()

    def finish(self) -> None:
        """Forget the files the load that just ended did not read."""
        for path in [p for p in self._files if p not in self._used]:
            del self._files[path]

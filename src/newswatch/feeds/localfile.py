"""Read a local feed file (a path or a file:// URL) with a size cap.

Runs in a worker thread: a file on a slow or hung network mount must not
stall the event loop. The validator is an ETag made of the modification time
(ns) and size, so an unchanged file is reported ``not_modified`` without
being read or parsed again.
"""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

__all__ = ["FileRead", "read_file"]


@dataclasses.dataclass(frozen=True, slots=True)
class FileRead:
    url: str
    body: bytes | None = None
    etag: str | None = None
    not_modified: bool = False
    too_large: bool = False
    error: str | None = None


def read_file(source: str, max_bytes: int, etag: str | None) -> FileRead:
    """Read ``source`` unless its validator equals ``etag``. Never raises OSError."""
    if source.lower().startswith("file:"):
        parts = urlsplit(source)
        if parts.netloc not in ("", "localhost"):
            return FileRead(url=source, error=f"file URL on a remote host: {parts.netloc}")
        path = Path(url2pathname(parts.path))
    else:
        path = Path(source).expanduser()
    url = source
    try:
        url = path.resolve().as_uri()
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the thread forever
            return FileRead(url=url, error=f"not a regular file: {path}")
        validator = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        if etag == validator:
            return FileRead(url=url, etag=validator, not_modified=True)
        if info.st_size > max_bytes:
            return FileRead(url=url, too_large=True)
        with path.open("rb") as f:
            body = f.read(max_bytes + 1)  # the file may grow between stat and read
    except FileNotFoundError:
        return FileRead(url=url, error=f"file not found: {path}")
    except PermissionError:
        return FileRead(url=url, error=f"permission denied: {path}")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return FileRead(url=url, error=f"could not read {path}: {reason}")
    if len(body) > max_bytes:
        return FileRead(url=url, too_large=True)
    return FileRead(url=url, body=body, etag=validator)

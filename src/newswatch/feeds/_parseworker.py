"""The parse worker process: ``python -m newswatch.feeds._parseworker``.

Reads jobs from stdin and writes replies to stdout, in frames (``_frames``).
A job is two frames: the pickle of ``(job_id, url, content_type, label, texts)``,
then the document's bytes as they are (no copy through pickle). A reply is
one frame, the pickle of ``(job_id, ok, feed or error message, log records,
recycle)``: the log records are ``(logger name, level, message)`` of the
warnings ``parse_feed`` logged (the parent logs them again, so they reach the
daemon's handlers), and ``recycle`` asks the parent to replace this worker
(after a MemoryError its heap is suspect). The first frame is ``("ready",
pid)``, sent once the imports are done. End of input ends the process.

stdout carries only frames: anything that prints is sent to stderr instead.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
from typing import Any, BinaryIO, Final

from newswatch.feeds._frames import HEADER, MEMORY_LIMIT_ENV

_OUT_OF_MEMORY: Final = "the parser ran out of memory on this document"


class _Collect(logging.Handler):
    """Keeps the records of the current job, to be sent with its reply."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


def _read_frame(stream: BinaryIO) -> bytes | None:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def _write_frame(stream: BinaryIO, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def _limit_memory() -> None:
    limit = os.environ.get(MEMORY_LIMIT_ENV)
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))


def main() -> int:
    # Ctrl-C reaches the whole process group; the parent decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    jobs = sys.stdin.buffer
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    from newswatch.feeds.parse import FeedParseError, parse_feed

    collect = _Collect()
    logging.getLogger().addHandler(collect)
    logging.getLogger().setLevel(logging.WARNING)
    _limit_memory()
    _write_frame(replies, ("ready", os.getpid()))
    while (meta := _read_frame(jobs)) is not None:
        job_id, url, content_type, label, texts = pickle.loads(meta)
        collect.records = []
        try:
            body = _read_frame(jobs)
        except MemoryError:  # the input is now out of step: reply and go
            _write_frame(replies, (job_id, False, _OUT_OF_MEMORY, [], True))
            return 1
        if body is None:
            break
        recycle = False
        try:
            result: Any = parse_feed(
                body, url=url, content_type=content_type, label=label, texts=texts
            )
            ok = True
        except FeedParseError as exc:
            ok, result = False, exc.message
        except MemoryError:
            ok, result, recycle = False, _OUT_OF_MEMORY, True
        except Exception as exc:  # a bug in a parser: this feed fails, not the pool
            ok, result = False, f"the parser failed: {type(exc).__name__}: {exc}"[:500]
        del body
        _write_frame(replies, (job_id, ok, result, collect.records, recycle))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

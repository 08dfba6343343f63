"""Content codings of an HTTP body, decoded with a bounded output per step.

httpx decodes each network read whole, and every coding layer of it at
once: a 1.9 KB body sent as ``Content-Encoding: gzip, gzip`` inflated to
2 GiB inside one read, before any size cap could count it. So the fetcher
reads the raw stream and decodes here instead:

- one coding at most (``identity``, ``gzip`` or its alias ``x-gzip``,
  ``deflate``). Stacked codings have no use for a feed and are how the
  worst bombs are built; br, zstd and compress are not asked for
  (``ACCEPT_ENCODING``) and are refused. Brotli is left out because no
  decoder in the standard library bounds its output per step.
- zlib's ``max_length`` caps each step's output at ``DECODE_STEP`` bytes;
  the caller counts them against its limit after every step, so memory
  stays at the limit plus one step, whatever the compression ratio.

Refusals are one sentence for ``newswatch feeds``, e.g.
``refused: stacked content encodings gzip, gzip``.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

__all__ = [
    "ACCEPT_ENCODING",
    "DECODE_STEP",
    "BodyDecoder",
    "DecodeError",
    "EncodingRefused",
    "decoder_for",
]

ACCEPT_ENCODING = "gzip, deflate"
# Output of one inflate step. A network read is at most 64 KiB too, so a step
# costs what a read does; the size cap can overshoot by at most this much.
DECODE_STEP = 64 * 1024
_ALIASES = {"x-gzip": "gzip"}
_SUPPORTED = frozenset({"gzip", "deflate"})
# A coding name is echoed in the error; a hostile server chooses it.
_MAX_NAME_CHARS = 24
_TOKEN_JUNK = re.compile(r"[^a-z0-9!#$%&'*+.^_`|~-]")
# zlib's wbits: a zlib header, raw deflate, or zlib-or-gzip by its header.
_ZLIB_WBITS = zlib.MAX_WBITS
_RAW_WBITS = -zlib.MAX_WBITS
_AUTO_WBITS = 32 + zlib.MAX_WBITS


class EncodingRefused(ValueError):
    """The response's Content-Encoding is one we do not decode."""


class DecodeError(ValueError):
    """The body is not valid data of its declared coding."""


def _clean(name: str) -> str:
    return _TOKEN_JUNK.sub("?", name)[:_MAX_NAME_CHARS]


def decoder_for(content_encoding: str | None) -> BodyDecoder:
    """A decoder for a ``Content-Encoding`` header value (several headers
    joined with commas), or :class:`EncodingRefused` with the reason."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    codings = [c for c in codings if c and c != "identity"]  # identity is a no-op
    if len(codings) > 1:
        listed = ", ".join(_clean(c) for c in codings[:4])
        raise EncodingRefused(f"refused: stacked content encodings {listed}")
    if not codings:
        return BodyDecoder(None)
    coding = _ALIASES.get(codings[0], codings[0])
    if coding not in _SUPPORTED:
        raise EncodingRefused(f"refused: unsupported content encoding {_clean(codings[0])}")
    return BodyDecoder(coding)


class BodyDecoder:
    """Feed it raw chunks; it yields decoded pieces of at most ``DECODE_STEP``
    bytes (identity passes chunks through as they came).

    ``deflate`` means a zlib stream, but some servers send raw deflate; the
    first two bytes tell which (as httpx and browsers accept both). Data
    after the end of the compressed stream is ignored, as httpx does;
    ``finished`` tells the caller it can stop reading. A body cut short
    yields what it held, like httpx: the parser judges the rest.
    """

    def __init__(self, coding: str | None) -> None:
        self.coding = coding or "identity"
        self._inflater: zlib._Decompress | None = None
        self._head = b""  # deflate: bytes held until the header can be told apart
        if coding == "gzip":
            self._inflater = zlib.decompressobj(_AUTO_WBITS)

    @property
    def finished(self) -> bool:
        return self._inflater is not None and self._inflater.eof

    def decode(self, chunk: bytes) -> Iterator[bytes]:
        if self.coding == "identity":
            if chunk:
                yield chunk
            return
        if self._inflater is None:  # deflate, header not seen yet
            self._head += chunk
            if len(self._head) < 2:
                return
            chunk, self._head = self._head, b""
            self._inflater = zlib.decompressobj(_ZLIB_WBITS if _is_zlib(chunk) else _RAW_WBITS)
        yield from self._inflate(self._inflater, chunk)

    def end(self) -> Iterator[bytes]:
        """What is left when the body ended (a one-byte deflate body)."""
        if self._inflater is None and self._head:
            self._inflater = zlib.decompressobj(_RAW_WBITS)
            yield from self._inflate(self._inflater, self._head)

    @staticmethod
    def _inflate(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        while not inflater.eof:
            try:
                out = inflater.decompress(data, DECODE_STEP)
            except zlib.error as exc:
                raise DecodeError(f"could not decompress the response: {exc}") from None
            if out:
                yield out
            data = inflater.unconsumed_tail
            # A full step may leave output pending inside zlib even when
            # all input was taken, so only a short step means "done".
            if not data and len(out) < DECODE_STEP:
                return


def _is_zlib(head: bytes) -> bool:
    """RFC 1950 header: deflate method, and the check bits make CMF/FLG a multiple of 31."""
    cmf, flg = head[0], head[1]
    return cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0

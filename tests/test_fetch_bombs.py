"""Decompression bombs and content codings, served by a real loopback server.

The decoder refuses what it should (stacked and unknown codings), decodes
what it should (gzip, x-gzip, zlib and raw deflate, chunked or not), and
stops every bomb at the decoded-size cap. A second set runs each bomb's
fetch in a fresh process and checks its peak RSS growth (ru_maxrss) stays
under 64 MiB: a functional bound on memory, not a timing.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zlib
from collections.abc import AsyncIterator, Iterator

import pytest

from feedserver import FeedServer, Reply, compressed_zeros
from newswatch.feeds.decode import DECODE_STEP, BodyDecoder, DecodeError, decoder_for
from newswatch.feeds.fetch import Fetcher

MiB = 1024 * 1024
GiB = 1024 * MiB
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
# The decoded-size cap of these tests: the default poll.max_bytes.
MAX_BYTES = 10 * MiB
# Issue 7's target: no bomb may grow the process by more than this.
RSS_BOUND_KIB = 64 * 1024


def _raw_deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return deflater.compress(data) + deflater.flush()


@pytest.fixture(scope="module")
def gzip_gib() -> bytes:
    return compressed_zeros(GiB, "gzip")  # about 1 MiB on the wire


@pytest.fixture(scope="module")
def bombs(gzip_gib: bytes) -> dict[str, Reply]:
    """Each bomb expands to at least 1 GiB."""
    stacked = gzip.compress(gzip_gib, mtime=0)
    assert len(stacked) < 4096  # 1.9 KB -> 1 GiB -> ..., as in issue 7
    return {
        "gzip-1GiB": Reply(body=gzip_gib, headers={"Content-Encoding": "gzip"}),
        "gzip-gzip": Reply(body=stacked, headers={"Content-Encoding": "gzip, gzip"}),
        "deflate-1GiB": Reply(
            body=compressed_zeros(GiB, "deflate"), headers={"Content-Encoding": "deflate"}
        ),
        "chunked-gzip-1GiB": Reply(
            body=gzip_gib, headers={"Content-Encoding": "gzip"}, chunked=True
        ),
    }


EXPECTED = {
    "gzip-1GiB": "body larger than 10.0 MiB limit",
    "gzip-gzip": "refused: stacked content encodings gzip, gzip",
    "deflate-1GiB": "body larger than 10.0 MiB limit",
    "chunked-gzip-1GiB": "body larger than 10.0 MiB limit",
}


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(concurrency=4, per_host=4, timeout=20.0, max_bytes=MAX_BYTES) as f:
        yield f


# --------------------------------------------------------------------------- refusals


async def test_every_bomb_is_refused(
    server: FeedServer, fetcher: Fetcher, bombs: dict[str, Reply]
) -> None:
    for name, reply in bombs.items():
        server.route(f"/{name}", reply)
        result = await fetcher.fetch("k", server.url(f"/{name}"))
        assert (name, result.error) == (name, EXPECTED[name])
        assert result.body is None


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("gzip, gzip", "refused: stacked content encodings gzip, gzip"),
        ("deflate, gzip", "refused: stacked content encodings deflate, gzip"),
        ("br", "refused: unsupported content encoding br"),
        ("zstd", "refused: unsupported content encoding zstd"),
        ("compress", "refused: unsupported content encoding compress"),
        ("x-evil<script>", "refused: unsupported content encoding x-evil?script?"),
    ],
)
async def test_refused_codings(
    server: FeedServer, fetcher: Fetcher, header: str, error: str
) -> None:
    server.route("/feed.xml", body=gzip.compress(RSS), headers={"Content-Encoding": header})
    result = await fetcher.fetch("k", server.url("/feed.xml"))
    assert result.error == error


async def test_two_encoding_headers_are_stacked(server: FeedServer, fetcher: Fetcher) -> None:
    # The same stack sent as two header lines instead of one list (the
    # server sends one line per key, and these two keys differ in case).
    body = gzip.compress(gzip.compress(RSS))
    headers = {"Content-Encoding": "gzip", "content-encoding": "gzip"}
    server.route("/feed.xml", body=body, headers=headers)
    result = await fetcher.fetch("k", server.url("/feed.xml"))
    assert result.error == "refused: stacked content encodings gzip, gzip"


@pytest.mark.parametrize(
    ("header", "body"),
    [
        ("gzip", gzip.compress(RSS * 100)),
        ("x-gzip", gzip.compress(RSS * 100)),
        ("GZIP", gzip.compress(RSS * 100)),
        ("deflate", zlib.compress(RSS * 100)),  # the zlib stream RFC 9110 means
        ("deflate", _raw_deflate(RSS * 100)),  # what some servers send instead
        ("identity", RSS * 100),
        ("gzip, identity", gzip.compress(RSS * 100)),
    ],
)
async def test_accepted_codings_are_decoded(
    server: FeedServer, fetcher: Fetcher, header: str, body: bytes
) -> None:
    server.route("/feed.xml", body=body, headers={"Content-Encoding": header})
    result = await fetcher.fetch("k", server.url("/feed.xml"))
    assert result.error is None
    assert result.body == RSS * 100


async def test_we_ask_only_for_what_we_decode(server: FeedServer, fetcher: Fetcher) -> None:
    server.route("/feed.xml", body=RSS)
    await fetcher.fetch("k", server.url("/feed.xml"))
    assert server.requests_to("/feed.xml")[-1].headers["accept-encoding"] == "gzip, deflate"


async def test_corrupt_gzip_is_an_error(server: FeedServer, fetcher: Fetcher) -> None:
    server.route(
        "/feed.xml", body=b"\x1f\x8b\x08\x00garbage" * 10, headers={"Content-Encoding": "gzip"}
    )
    result = await fetcher.fetch("k", server.url("/feed.xml"))
    assert result.error is not None
    assert result.error.startswith("could not decompress the response: ")


async def test_data_after_the_gzip_stream_is_ignored(server: FeedServer, fetcher: Fetcher) -> None:
    server.route(
        "/feed.xml",
        body=gzip.compress(RSS) + b"junk",
        chunked=True,
        headers={"Content-Encoding": "gzip"},
    )
    result = await fetcher.fetch("k", server.url("/feed.xml"))
    assert result.body == RSS


async def test_gzip_body_exactly_at_the_cap(server: FeedServer) -> None:
    body = bytes(range(256)) * (MiB // 256)
    server.route("/at.xml", body=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    server.route("/over.xml", body=gzip.compress(body + b"x"), headers={"Content-Encoding": "gzip"})
    async with Fetcher(concurrency=1, per_host=1, timeout=10.0, max_bytes=MiB) as f:
        at = await f.fetch("k", server.url("/at.xml"))
        over = await f.fetch("k", server.url("/over.xml"))
    assert at.body == body
    assert over.error == "body larger than 1.0 MiB limit"


# --------------------------------------------------------------------------- the decoder


def test_decoder_output_is_bounded_per_step(gzip_gib: bytes) -> None:
    decoder = decoder_for("gzip")
    # One network read's worth of a bomb expands to ~64 MiB; it must come
    # out in steps no bigger than DECODE_STEP, lazily.
    pieces = decoder.decode(gzip_gib[:65536])
    sizes = [len(next(pieces)) for _ in range(100)]
    assert max(sizes) == DECODE_STEP


def test_decoder_drains_output_pending_after_a_full_step() -> None:
    # Input fully consumed while the output buffer was exactly full: zlib
    # still holds output, which the next empty-input step must return.
    data = bytes(3 * DECODE_STEP)
    decoder = decoder_for("deflate")
    out = b"".join(decoder.decode(zlib.compress(data)))
    assert out == data
    assert decoder.finished


def test_output_comes_as_soon_as_its_input_arrived() -> None:
    # At some read boundaries zlib has taken all input but still holds output
    # (the rest of a back-reference). Whatever the boundary, the pieces of a
    # read must add up to all that read's input can give, as unbounded zlib
    # gives it, so nothing waits for a next read that may never come.
    stream = zlib.compress(bytes(256 * 1024), 9)
    for cut in range(1, len(stream)):
        expected = zlib.decompressobj().decompress(stream[:cut])
        got = b"".join(decoder_for("deflate").decode(stream[:cut]))
        assert len(got) == len(expected), f"cut at {cut}"


def test_one_byte_deflate_body() -> None:
    decoder = decoder_for("deflate")
    assert list(decoder.decode(b"\x03")) == []  # header not decidable yet
    assert b"".join(decoder.end()) == b""  # an empty raw deflate block


def test_deflate_header_split_across_reads() -> None:
    stream = zlib.compress(RSS)
    decoder = decoder_for("deflate")
    out = b"".join(decoder.decode(stream[:1])) + b"".join(decoder.decode(stream[1:]))
    assert out == RSS


def test_decode_error_names_the_reason() -> None:
    decoder = BodyDecoder("gzip")
    with pytest.raises(DecodeError, match=r"^could not decompress the response: "):
        list(decoder.decode(b"not gzip at all"))


# --------------------------------------------------------------------------- memory

# Runs in a fresh interpreter: fetches a small gzip feed first (so code and
# buffers that any fetch needs are in place), then the bomb, and reports how
# far the peak RSS (ru_maxrss) rose above the RSS just before the bomb's
# fetch. On Linux the peak is reset first (clear_refs), so start-up garbage
# freed before the bomb neither hides nor inflates its growth; elsewhere the
# peak so far is the baseline.
_PROBE = """
import asyncio, contextlib, json, resource, sys
from newswatch.feeds.fetch import Fetcher

def peak_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

def reset_peak():
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")

async def main(warm_url, bomb_url, max_bytes):
    async with Fetcher(concurrency=2, per_host=2, timeout=30.0, max_bytes=max_bytes) as f:
        warm = await f.fetch("warm", warm_url)
        assert warm.ok, warm.error
        reset_peak()
        before = peak_kib()
        result = await f.fetch("bomb", bomb_url)
        after = peak_kib()
    print(json.dumps({"growth_kib": after - before, "error": result.error}))

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def probe_bomb(warm_url: str, bomb_url: str, max_bytes: int = MAX_BYTES) -> dict[str, object]:
    """Fetch ``bomb_url`` in a fresh process; its peak RSS growth and error."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, warm_url, bomb_url, str(max_bytes)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bomb_keeps_rss_growth_under_64_mib(
    server: FeedServer, bombs: dict[str, Reply], name: str
) -> None:
    server.route("/warm.xml", body=gzip.compress(RSS * 1000), headers={"Content-Encoding": "gzip"})
    server.route(f"/{name}", bombs[name])
    report = probe_bomb(server.url("/warm.xml"), server.url(f"/{name}"))
    assert report["error"] == EXPECTED[name]
    growth = report["growth_kib"]
    assert isinstance(growth, int)
    assert growth < RSS_BOUND_KIB, f"{name}: peak RSS grew by {growth / 1024:.0f} MiB"

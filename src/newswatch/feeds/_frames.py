"""The framing between ``parsepool`` and its workers (``_parseworker``).

A frame is a 4-byte big-endian length and that many bytes. Kept apart from
both ends so that the worker module is never imported before ``python -m``
runs it.
"""

from __future__ import annotations

import struct
from typing import Final

HEADER: Final = struct.Struct(">I")
# The largest frame the 4-byte length can describe.
MAX_FRAME: Final = 2**32 - 1
# Environment variable holding a worker's address-space limit in bytes.
MEMORY_LIMIT_ENV: Final = "NEWSWATCH_PARSE_MEMORY_LIMIT"

"""Keep the memory one request frees for the next, instead of handing it back to the system.

glibc hands memory back to the system: a freed block above its mmap threshold, and the heap's free
top past its trim threshold (both raised as blocks are freed, the mmap threshold to 32 MB at most).
A 2000 px portrait frees tens of MB at once, and the next request faults fresh pages in again:
`predict` took ~7,800 page faults, 15 ms of its 46 (BENCHMARKS.md, Face profile). Fixed thresholds
above that keep those pages in the heap: 30 ms, for ~50 MB more resident between requests. 512 px
requests fault no pages either way.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
KEPT_BLOCK = 64 << 20
"""Blocks up to this size come from the heap; larger ones are still mapped and handed back."""


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process; False where the C library has no `mallopt` (not glibc),
    which changes nothing but the speed."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    # The heap's free top is trimmed past twice the mmap threshold, glibc's own ratio.
    return bool(mallopt(M_MMAP_THRESHOLD, KEPT_BLOCK)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * KEPT_BLOCK))

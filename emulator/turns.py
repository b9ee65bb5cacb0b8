"""Long work on the event loop in slices, so that it serves other calls in between."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

T = TypeVar("T")

PER_TURN = 250
"""Items handled in one turn of the event loop. Ending a request (its record, log line and metrics)
costs the loop ~0.1 ms: 50 000 ended at once held it 3-6 s (BENCHMARKS.md, *Cancelling and deleting
many queued requests*)."""


async def in_turns(items: Sequence[T], size: int = PER_TURN) -> AsyncIterator[Sequence[T]]:
    """`items` in slices of `size`, the event loop serving other calls between two slices."""
    for start in range(0, len(items), size):
        if start:
            await asyncio.sleep(0)
        yield items[start:start + size]

"""An ordered, memory-bounded map over chunks, on forked worker processes (``ketadose batch``).

Python runs one thread of Python code at a time, so a batch uses the machine's cores through
processes. Workers are forked, so they start with the libraries already loaded and nothing is
pickled but the rows going out and one result per chunk coming back (a batch returns a chunk's
text as one ``bytes``: far cheaper to pass than a tuple per row). At most ``2 * jobs`` chunks
are in flight: memory stays flat however long the input, and results come in input order.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice
from typing import Any, TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: Items per task: large enough that a task's overhead (~100 us) is small beside its work.
CHUNK = 200

#: The function the workers apply; set before they are forked, so it is never pickled.
_function: Callable[[Any], Any] | None = None


def _apply(chunk: list[Any]) -> Any:
    assert _function is not None  # set by chunk_map before forking
    return _function(chunk)


def chunk_map(
    function: Callable[[list[T]], U], items: Iterable[T], *, jobs: int, chunk: int = CHUNK
) -> Iterator[U]:
    """``function`` applied to successive chunks of ``items``, in order, on ``jobs`` processes.

    With one job, or fewer items than one chunk, everything runs in this process.

    Args:
        function: Applied to each chunk (a list of up to ``chunk`` items); any state it needs
            is inherited by the workers.
        items: The items, read lazily.
        jobs: Worker processes.
        chunk: Items per chunk.

    Yields:
        One result per chunk, in the order of ``items``.
    """
    global _function
    iterator = iter(items)
    chunks = chain(iter(lambda: list(islice(iterator, chunk)), []))
    first = next(chunks, [])
    if jobs <= 1 or len(first) < chunk:
        yield from map(function, chain([first] if first else [], chunks))
        return
    _function = function
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pending: deque[Any] = deque()
            for part in chain([first], chunks):
                pending.append(pool.apply_async(_apply, (part,)))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
    finally:
        _function = None

"""An ordered, memory-bounded ``map`` over forked worker processes (for ``ketadose batch``).

Python runs one thread of Python code at a time, so a batch uses the machine's cores through
processes. Workers are forked, so they start with the libraries already loaded and nothing is
pickled but the rows going out and the text coming back. At most ``2 * jobs`` chunks are in
flight: memory stays flat however long the input, and results come back in input order.
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


def _apply(chunk: list[Any]) -> list[Any]:
    assert _function is not None  # set by ordered_map before forking
    return [_function(item) for item in chunk]


def ordered_map(
    function: Callable[[T], U], items: Iterable[T], *, jobs: int, chunk: int = CHUNK
) -> Iterator[U]:
    """``function`` applied to each item, in order, on up to ``jobs`` processes.

    With one job, or fewer items than one chunk, everything runs in this process.

    Args:
        function: Applied to each item; any state it needs is inherited by the workers.
        items: The items, read lazily.
        jobs: Worker processes.
        chunk: Items per task.

    Yields:
        The results, in the order of ``items``.
    """
    global _function
    iterator = iter(items)
    first = list(islice(iterator, chunk))
    if jobs <= 1 or len(first) < chunk:
        yield from map(function, chain(first, iterator))
        return
    _function = function
    try:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            pending: deque[Any] = deque()
            rest = iter(lambda: list(islice(iterator, chunk)), [])
            for part in chain([first], rest):
                pending.append(pool.apply_async(_apply, (part,)))
                if len(pending) >= 2 * jobs:
                    yield from pending.popleft().get()
            while pending:
                yield from pending.popleft().get()
    finally:
        _function = None

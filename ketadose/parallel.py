"""Chunks of work on forked worker processes, their output written in input order (``batch``).

Python runs one thread of Python code at a time, so a batch uses the machine's cores through
processes. Workers are forked, so they start with the libraries already loaded. Each chunk's
output is written by the worker that made it, straight to the output's file descriptor, when
every earlier chunk has been written (a turn counter under a lock): the text never passes
through the parent, which only hands out rows and counts what comes back. At most ``2 * jobs``
chunks are in flight, so memory stays flat however long the input.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from itertools import chain, islice
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: Items per task: large enough that a task's overhead (~100 us) is small beside its work.
CHUNK = 200

#: What the workers need, set before they are forked (so never pickled): the function, the
#: output descriptor, the index of the next chunk to write, and the lock guarding it.
_shared: tuple[Callable[[Any], tuple[Any, bytes]], int, Any, Any] | None = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _apply(index: int, chunk: list[Any]) -> Any:
    """In a worker: process chunk ``index``, wait for its turn, write its output, pass on."""
    assert _shared is not None  # set by ordered_write before forking
    function, fd, turn, condition = _shared
    data: bytes | None = None
    try:
        meta, data = function(chunk)
    finally:
        # Even when the function failed, pass the turn on: no later chunk may wait forever.
        with condition:
            condition.wait_for(lambda: turn.value == index)
            try:
                if data is not None:
                    _write_all(fd, data)
            finally:
                turn.value = index + 1
                condition.notify_all()
    return meta


def _descriptor(sink: BinaryIO) -> int | None:
    """The sink's file descriptor, or None for an in-memory stream."""
    try:
        return sink.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def ordered_write(
    function: Callable[[list[T]], tuple[U, bytes]],
    items: Iterable[T],
    sink: BinaryIO,
    *,
    jobs: int,
    chunk: int = CHUNK,
) -> Generator[U, None, None]:
    """Apply ``function`` to chunks of ``items``, write each chunk's bytes to ``sink`` in order.

    With one job, fewer items than one chunk, or a sink without a file descriptor, everything
    runs in this process.

    Args:
        function: Takes a chunk (up to ``chunk`` items), returns (what to report, bytes to
            write). Any state it needs is inherited by the workers.
        items: The items, read lazily.
        sink: Where the bytes go (flushed here before the workers start).
        jobs: Worker processes.
        chunk: Items per chunk.

    Yields:
        What ``function`` reported for each chunk, in input order, once its bytes are written.
    """
    global _shared
    iterator = iter(items)
    chunks = iter(lambda: list(islice(iterator, chunk)), [])
    first = next(chunks, [])
    fd = _descriptor(sink)
    if jobs <= 1 or len(first) < chunk or fd is None:
        for part in chain([first] if first else [], chunks):
            meta, data = function(part)
            sink.write(data)
            yield meta
        return
    sink.flush()  # what the parent wrote so far goes first
    context = multiprocessing.get_context("fork")
    turn = context.Value("q", 0, lock=False)
    _shared = (function, fd, turn, context.Condition())
    try:
        with context.Pool(jobs) as pool:
            pending: deque[Any] = deque()
            for index, part in enumerate(chain([first], chunks)):
                pending.append(pool.apply_async(_apply, (index, part)))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
    finally:
        _shared = None

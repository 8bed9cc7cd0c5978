"""Chunks of work on worker processes, their output written in input order (``batch``).

Python runs one thread of Python code at a time, so a batch uses the machine's cores through
processes. Where ``fork`` is safe (Linux and the other POSIX systems but macOS), workers are
forked, so they start with the libraries already loaded, and each chunk's output is written by
the worker that made it, straight to the output's file descriptor, when every earlier chunk
has been written (a turn counter under a lock): the text never passes through the parent,
which only hands out rows and counts what comes back. Elsewhere (Windows, macOS, where
``fork`` is missing or unsafe) workers are spawned: they import ketadose afresh, the function
travels to them pickled, and the parent writes each chunk's bytes in order. A function that
cannot be pickled runs in this process. At most ``2 * jobs`` chunks are in flight either way,
so memory stays flat however long the input.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import pickle
import signal
import sys
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain, islice
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")
U = TypeVar("U")

#: Items per task: large enough that a task's overhead (~100 us) is small beside its work.
CHUNK = 200

#: What the workers need, set before they are forked (so never pickled): the function, the
#: output descriptor, the index of the next chunk to write, and the lock guarding it.
_shared: tuple[Callable[[Any], tuple[Any, bytes]], int, Any, Any] | None = None

#: In a spawned worker: the function, received once when the worker started.
_installed: Callable[[Any], tuple[Any, bytes]] | None = None

#: Collection thresholds for many short-lived objects (see :func:`few_collections`).
THRESHOLDS = (20_000, 20, 20)


def cpus() -> int:
    """The cores this process may run on: its affinity where the OS tells it, else the count."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    if affinity is not None:
        return max(1, len(affinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def few_collections() -> Iterator[None]:
    """Collect garbage rarely while the block runs; what was loaded before it is frozen.

    Plans make many short-lived objects and no cycles: collecting every 700 allocations (the
    default) costs ~5% of a batch. Freezing what is loaded (libraries, modules) keeps the
    collector from walking it again, and keeps the forked workers' copies of those pages
    shared with the parent (a collection writes to every object it visits). The thresholds
    are given back when the block ends; the frozen objects stay frozen: they live as long as
    the process anyway, and unfreezing them would make the collection at exit walk them all
    (~0.1 s of a command's run).
    """
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def forks() -> bool:
    """Whether workers are forked: ``fork`` exists and is safe (not on macOS)."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


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
    if not forks():
        yield from _spawned(function, chain([first], chunks), sink, jobs)
        return
    context = multiprocessing.get_context("fork")
    turn = context.Value("q", 0, lock=False)
    _shared = (function, fd, turn, context.Condition())
    try:
        with context.Pool(jobs, initializer=_leave_interrupts) as pool:
            pending: deque[Any] = deque()
            for index, part in enumerate(chain([first], chunks)):
                pending.append(pool.apply_async(_apply, (index, part)))
                if len(pending) >= 2 * jobs:
                    yield pending.popleft().get()
            while pending:
                yield pending.popleft().get()
    finally:
        _shared = None


def _install(function: Callable[[Any], tuple[Any, bytes]], thresholds: tuple[int, ...]) -> None:
    """In a spawned worker, once: keep the function, collect garbage as the parent does."""
    global _installed
    _leave_interrupts()
    _installed = function
    gc.set_threshold(*thresholds)


def _leave_interrupts() -> None:
    """In a worker: Ctrl-C is the parent's (it stops the pool and says so in one line).

    A worker interrupted too would print its own traceback on stderr, in the middle of the
    parent's message.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(chunk: Any) -> tuple[Any, bytes]:
    """In a spawned worker: the installed function on a chunk."""
    assert _installed is not None  # set by the pool's initializer
    return _installed(chunk)


def _spawned(
    function: Callable[[list[T]], tuple[U, bytes]],
    chunks: Iterable[list[T]],
    sink: BinaryIO,
    jobs: int,
) -> Generator[U, None, None]:
    """Spawned workers; the parent writes each chunk's bytes in input order.

    The function travels to each worker once, when it starts (pickled: a batch's libraries
    are ~200 kB, too much to send with every chunk); then only the chunks travel. A function
    that cannot be pickled (a closure) cannot travel to a spawned worker: it runs here, one
    chunk after another, as with one job.
    """
    try:
        pickle.dumps(function)
    except (pickle.PicklingError, AttributeError, TypeError):
        for part in chunks:
            meta, data = function(part)
            sink.write(data)
            yield meta
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_install, initargs=(function, gc.get_threshold())) as pool:
        pending: deque[Any] = deque()
        for part in chunks:
            pending.append(pool.apply_async(_call, (part,)))
            if len(pending) >= 2 * jobs:
                meta, data = pending.popleft().get()
                sink.write(data)
                yield meta
        while pending:
            meta, data = pending.popleft().get()
            sink.write(data)
            yield meta

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

:func:`routed_write` (a batch) sends items with the same route to the same forked worker,
so what a worker keeps for an input serves every item with it: each worker writes its part of
a round into a buffer shared with the parent, which writes the round in input order.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import mmap
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

if TYPE_CHECKING:  # imported by multiprocessing itself when workers are forked
    from multiprocessing.connection import Connection

T = TypeVar("T")
U = TypeVar("U")

#: Items per task: large enough that a task's overhead (~100 us) is small beside its work.
CHUNK = 200

#: What the workers need, set before they are forked (so never pickled): the function, the
#: output descriptor, the index of the next chunk to write, and the lock guarding it.
_shared: tuple[Callable[[Any], tuple[Any, bytes]], int, Any, Any] | None = None

#: What routed workers need (:func:`routed_write`), set before they are forked: the function
#: of each item, the shared output buffer, the size of each of its slots, and the directory
#: for the text of a part too long for its slot.
_routed: tuple[Callable[[Any], tuple[Any, list[bytes]]], mmap.mmap, int, str] | None = None

#: A routed task's slot of the shared output buffer: large enough for 200 rows of long plans
#: (a 6-session plan's JSON line is ~11 kB); a task's text that does not fit travels back to
#: the parent pickled instead. Pages never written take no memory.
SLOT = 16 * 1024 * 1024

#: How far a routed part may grow past its share of a round before its items go to others.
SLACK = 1.25

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


def _joined(
    each: Callable[[list[T]], tuple[list[U], list[bytes]]], chunk: list[T]
) -> tuple[list[U], bytes]:
    """A chunk function from a function of each item: the items' metas and their bytes joined."""
    metas, texts = each(chunk)
    return metas, b"".join(texts)


def _apply_part(slot: int, part: list[Any]) -> tuple[list[Any], list[int], str | None]:
    """In a routed worker: one part's metas and the lengths of its items' bytes.

    The bytes go into the part's slot of the shared buffer, one item after another, or, where
    they do not fit, into a file in the run's spill directory whose name is the third value
    (the reply through the pipe stays small, so neither end can wait on the other's full pipe).
    """
    assert _routed is not None  # set by routed_write before forking
    each, buffer, size, spill_directory = _routed
    metas, texts = each(part)
    lengths = [len(text) for text in texts]
    if sum(lengths) > size:
        handle, name = tempfile.mkstemp(dir=spill_directory)
        with os.fdopen(handle, "wb") as spill:
            spill.writelines(texts)
        return metas, lengths, name
    at = slot * size
    for text in texts:
        buffer[at : at + len(text)] = text
        at += len(text)
    return metas, lengths, None


def _serve(tasks: Connection) -> None:
    """A routed worker: apply the function to each part it is sent, until it is sent None.

    Replies ``(True, result)``, or ``(False, error)`` for an exception (its repr where it does
    not pickle), in the order the parts came.
    """
    _leave_interrupts()
    while (task := tasks.recv()) is not None:
        try:
            reply: tuple[bool, object] = (True, _apply_part(*task))
        except Exception as error:  # the parent raises it
            reply = (False, error)
        try:
            tasks.send(reply)
        except Exception as error:  # an error that does not pickle: its words
            tasks.send((False, RuntimeError(repr(error))))


class _Worker:
    """A forked process serving parts (:func:`_serve`), and the parent's end of its pipe."""

    def __init__(self, context: Any) -> None:
        self.tasks, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs,), daemon=True)
        self.process.start()
        theirs.close()  # only the worker holds its end: its death is an EOF here

    def result(self) -> tuple[list[Any], list[int], str | None]:
        """The reply to the oldest part sent, or its error raised here."""
        ok, value = self.tasks.recv()
        if not ok:
            raise value
        result: tuple[list[Any], list[int], str | None] = value
        return result

    def stop(self, *, kill: bool) -> None:
        """Let the worker end (or end it, after an error), and wait for it."""
        if kill:
            self.process.terminate()
        else:
            with contextlib.suppress(OSError):
                self.tasks.send(None)
        self.process.join()
        self.tasks.close()


def _parts(items: list[T], route: Callable[[T], int], jobs: int) -> list[list[int]]:
    """Which items of a round each worker gets: by ``route``, none more than its share's slack.

    Items whose route is the same go to the same worker (so what they share is computed
    once), unless that worker's part is already ``SLACK`` times its share: then the item goes
    to the part with fewest items (a round of one repeated input is still shared out).
    """
    share = -(-len(items) // jobs)
    cap = max(1, int(share * SLACK))
    parts: list[list[int]] = [[] for _ in range(jobs)]
    for index, item in enumerate(items):
        part = parts[route(item) % jobs]
        if len(part) >= cap:
            part = min(parts, key=len)
        part.append(index)
    return parts


def routed_write(
    each: Callable[[list[T]], tuple[list[U], list[bytes]]],
    items: Iterable[T],
    sink: BinaryIO,
    *,
    jobs: int,
    route: Callable[[T], int],
    chunk: int = CHUNK,
) -> Generator[list[U], None, None]:
    """Apply ``each`` on workers chosen by ``route``, write the items' bytes to ``sink`` in order.

    Like :func:`ordered_write`, but items with the same ``route`` go to the same worker, so a
    worker that keeps what items share (a batch's records by input) computes each of them
    once, not once per worker. The items are read a round at a time (``chunk`` per worker),
    each round split into one part per worker (:func:`_parts`); each worker writes its part's
    bytes into a slot of a buffer shared with this process (so the text is not pickled), and
    this process writes the round's bytes in input order. At most two rounds are in flight, so
    memory stays flat. With one job, fewer items than a round, or no ``fork``, it is
    :func:`ordered_write` of the items' bytes joined.

    Args:
        each: Takes a list of items, returns each one's meta and each one's bytes.
        items: The items, read lazily.
        sink: Where the bytes go (flushed here before the workers start).
        jobs: Worker processes.
        route: A number for an item; items with the same number go to one worker.
        chunk: Items per worker and round.

    Yields:
        The metas of each round (or chunk), in input order, once its bytes are written.
    """
    global _routed
    iterator = iter(items)
    size = chunk * jobs
    rounds = iter(lambda: list(islice(iterator, size)), [])
    first = next(rounds, [])
    if jobs <= 1 or len(first) < size or not forks():
        joined = functools.partial(_joined, each)
        rest = chain.from_iterable(chain([first], rounds))
        yield from ordered_write(joined, rest, sink, jobs=jobs, chunk=chunk)
        return
    sink.flush()  # what the parent wrote so far goes first
    context = multiprocessing.get_context("fork")
    buffer = mmap.mmap(-1, 2 * jobs * SLOT)  # anonymous and shared with the forked workers
    # A part's text too long for its slot goes into a file here; removed whatever happens.
    spill_directory = tempfile.mkdtemp(prefix="ketadose-batch-")
    _routed = (each, buffer, SLOT, spill_directory)
    workers: list[_Worker] = []
    failed = True
    try:
        workers.extend(_Worker(context) for _ in range(jobs))
        pending: deque[tuple[list[T], list[list[int]], list[int]]] = deque()
        for number, round_items in enumerate(chain([first], rounds)):
            parts = _parts(round_items, route, jobs)
            slots = [(number % 2) * jobs + index for index in range(jobs)]
            for worker, slot, part in zip(workers, slots, parts, strict=True):
                worker.tasks.send((slot, [round_items[i] for i in part]))
            pending.append((round_items, parts, slots))
            if len(pending) >= 2:
                yield _write_round(buffer, sink, workers, *pending.popleft())
        while pending:
            yield _write_round(buffer, sink, workers, *pending.popleft())
        failed = False
    finally:
        for worker in workers:
            worker.stop(kill=failed)
        _routed = None
        buffer.close()
        shutil.rmtree(spill_directory, ignore_errors=True)


def _write_round(
    buffer: mmap.mmap,
    sink: BinaryIO,
    workers: list[_Worker],
    round_items: list[Any],
    parts: list[list[int]],
    slots: list[int],
) -> list[Any]:
    """Wait for a round's parts, write their bytes to ``sink`` in input order, give the metas."""
    metas: list[Any] = [None] * len(round_items)
    results = []
    for worker, part, slot in zip(workers, parts, slots, strict=True):
        part_metas, lengths, spilt = worker.result()
        for index, meta in zip(part, part_metas, strict=True):
            metas[index] = meta
        text = None
        if spilt is not None:
            with open(spilt, "rb") as spill:
                text = spill.read()
            os.unlink(spilt)
        results.append((part, slot, lengths, text))
    sink.write(_in_order(buffer, len(round_items), results))
    return metas


def _in_order(
    buffer: mmap.mmap, count: int, results: list[tuple[list[int], int, list[int], bytes | None]]
) -> bytes:
    """A round's bytes in input order, from each part's slot (or its returned text).

    Every view of the shared buffer is gone when this returns (the buffer can be closed).
    """
    pieces: list[bytes | memoryview] = [b""] * count
    whole = memoryview(buffer)
    for part, slot, lengths, text in results:
        view = whole[slot * SLOT : (slot + 1) * SLOT] if text is None else memoryview(text)
        at = 0
        for index, length in zip(part, lengths, strict=True):
            pieces[index] = view[at : at + length]
            at += length
    joined = b"".join(pieces)
    pieces.clear()
    return joined

"""Chunks of work in order on forked or spawned workers, or in this process (ketadose.parallel)."""

from __future__ import annotations

import io
import multiprocessing
import os
import tempfile
from collections.abc import Callable

import pytest

from ketadose import parallel


def squares(chunk: list[int]) -> tuple[int, bytes]:
    """A picklable chunk function: how many items, and each squared on its own line."""
    return len(chunk), b"".join(f"{n * n}\n".encode() for n in chunk)


Chunked = Callable[[list[int]], tuple[int, bytes]]


def run(jobs: int, function: Chunked = squares, count: int = 1000) -> tuple[list[int], str]:
    with tempfile.TemporaryFile() as sink:
        metas = list(parallel.ordered_write(function, range(count), sink, jobs=jobs, chunk=100))
        sink.seek(0)
        return metas, sink.read().decode()


EXPECTED = "".join(f"{n * n}\n" for n in range(1000))


def test_forked_workers_write_in_input_order() -> None:
    assert parallel.forks()  # this is Linux
    metas, text = run(jobs=2)
    assert metas == [100] * 10
    assert text == EXPECTED


def test_spawned_workers_where_fork_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Windows has no fork; macOS has one that is not safe: the parent writes in order.
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert not parallel.forks()
    metas, text = run(jobs=2)
    assert metas == [100] * 10
    assert text == EXPECTED


def test_a_closure_runs_here_when_workers_are_spawned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    offset = 1

    def closure(chunk: list[int]) -> tuple[int, bytes]:
        return len(chunk), b"".join(f"{n + offset}\n".encode() for n in chunk)

    metas, text = run(jobs=2, function=closure)
    assert metas == [100] * 10
    assert text == "".join(f"{n + 1}\n" for n in range(1000))


def test_an_in_memory_sink_runs_here() -> None:
    sink = io.BytesIO()
    assert list(parallel.ordered_write(squares, range(300), sink, jobs=2, chunk=100)) == [100] * 3
    assert sink.getvalue().decode() == "".join(f"{n * n}\n" for n in range(300))


def test_cpus_without_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parallel.cpus() == len(os.sched_getaffinity(0))
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert parallel.cpus() == 8
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert parallel.cpus() == 1


def worker_state(chunk: list[int]) -> tuple[tuple[int, tuple[int, ...]], bytes]:
    """Which process ran the chunk, and its garbage-collection thresholds."""
    import gc

    return (os.getpid(), gc.get_threshold()), b"%d\n" % len(chunk)


class TestSpawned:
    """Spawned workers get the function once, and collect garbage as the parent does."""

    def test_workers_inherit_the_thresholds(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(parallel, "forks", lambda: False)
        with tempfile.TemporaryFile() as sink, parallel.few_collections():
            metas = list(parallel.ordered_write(worker_state, range(400), sink, jobs=2, chunk=100))
            sink.seek(0)
            assert sink.read() == b"100\n" * 4
        assert os.getpid() not in {pid for pid, _ in metas}  # really another process
        assert {thresholds for _, thresholds in metas} == {parallel.THRESHOLDS}


class TestFewCollections:
    """Garbage is collected rarely inside the block, as usual after it."""

    def test_thresholds_are_given_back(self) -> None:
        import gc

        before = gc.get_threshold()  # (the command line's main sets the batch's too)
        gc.set_threshold(700, 10, 10)  # Python's default
        try:
            with parallel.few_collections():
                assert gc.get_threshold() == (20_000, 20, 20)
                assert gc.get_freeze_count() > 0  # what was loaded is never scanned again
            assert gc.get_threshold() == (700, 10, 10)
        finally:
            gc.set_threshold(*before)

    def test_given_back_after_an_error(self) -> None:
        import gc

        before = gc.get_threshold()
        with pytest.raises(KeyError), parallel.few_collections():
            raise KeyError("x")
        assert gc.get_threshold() == before


def worker_interrupts(chunk: list[int]) -> tuple[tuple[int, bool], bytes]:
    """Which process ran the chunk, and whether it ignores Ctrl-C."""
    import signal

    return (os.getpid(), signal.getsignal(signal.SIGINT) is signal.SIG_IGN), b"."


@pytest.mark.parametrize("forked", [True, False], ids=["forked", "spawned"])
def test_ctrl_c_is_the_parents_alone(forked: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # The parent stops the pool and says "interrupted" once; a worker says nothing.
    monkeypatch.setattr(parallel, "forks", lambda: forked)
    with tempfile.TemporaryFile() as sink:
        metas = list(parallel.ordered_write(worker_interrupts, range(400), sink, jobs=2, chunk=100))
    assert os.getpid() not in {pid for pid, _ in metas}
    assert all(ignores for _, ignores in metas)
    import signal

    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # the parent's own is kept


def each_square(chunk: list[int]) -> tuple[list[int], list[bytes]]:
    """A function of each item: the process that ran it, and the item squared on its line."""
    return [os.getpid()] * len(chunk), [f"{n * n}\n".encode() for n in chunk]


def by_tens(item: int) -> int:
    """Items of the same ten share a route."""
    return item // 10


def routed(jobs: int, count: int = 1000, **kwargs: object) -> tuple[list[int], str]:
    with tempfile.TemporaryFile() as sink:
        rounds = parallel.routed_write(
            each_square, range(count), sink, jobs=jobs, route=by_tens, chunk=100, **kwargs
        )
        metas = [pid for one in rounds for pid in one]
        sink.seek(0)
        return metas, sink.read().decode()


class TestRouted:
    """Items with the same route go to one worker; the bytes are written in input order."""

    def test_in_input_order_and_by_route(self) -> None:
        pids, text = routed(jobs=2)
        assert text == EXPECTED
        assert len(pids) == 1000
        assert os.getpid() not in pids
        by_route: dict[int, set[int]] = {}
        for item, pid in enumerate(pids):
            by_route.setdefault(by_tens(item), set()).add(pid)
        assert all(len(workers) == 1 for workers in by_route.values())
        assert len(set(pids)) == 2  # both workers had work

    def test_one_job_or_a_short_input_runs_here(self) -> None:
        pids, text = routed(jobs=1)
        assert text == EXPECTED
        assert set(pids) == {os.getpid()}
        _, text = routed(jobs=2, count=150)  # fewer than a round (2 x 100)
        assert text == "".join(f"{n * n}\n" for n in range(150))

    def test_text_too_long_for_a_slot_travels_by_file(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(parallel, "SLOT", 64)  # a part's 100 lines never fit
        before = set(os.listdir(tempfile.gettempdir()))
        _, text = routed(jobs=2)
        assert text == EXPECTED
        assert set(os.listdir(tempfile.gettempdir())) <= before  # the spill directory is gone

    def test_the_spill_directory_is_removed_after_an_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(parallel, "SLOT", 1)  # every part spills
        before = set(os.listdir(tempfile.gettempdir()))
        with tempfile.TemporaryFile() as sink, pytest.raises(ValueError, match="item 555"):
            list(parallel.routed_write(fragile_each, range(1000), sink, jobs=2, route=by_tens))
        assert set(os.listdir(tempfile.gettempdir())) <= before

    def test_an_error_in_a_worker_is_raised_here(self) -> None:
        with tempfile.TemporaryFile() as sink, pytest.raises(ValueError, match="item 555"):
            list(parallel.routed_write(fragile_each, range(1000), sink, jobs=2, route=by_tens))

    def test_one_route_is_still_shared_out(self) -> None:
        # A round of one repeated input: no worker gets more than its share's slack.
        parts = parallel._parts(list(range(400)), lambda item: 7, 2)
        assert sorted(map(len, parts)) == [150, 250]
        assert sorted(i for part in parts for i in part) == list(range(400))


def fragile_each(chunk: list[int]) -> tuple[list[int], list[bytes]]:
    """Fails on the chunk holding item 555."""
    if 555 in chunk:
        raise ValueError("item 555")
    return list(chunk), [b"x"] * len(chunk)


def each_interrupts(chunk: list[int]) -> tuple[list[tuple[int, bool]], list[bytes]]:
    """Each item: which process ran it, and whether that process ignores Ctrl-C."""
    import signal

    ignores = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    return [(os.getpid(), ignores)] * len(chunk), [b"."] * len(chunk)


def test_ctrl_c_is_the_parents_alone_when_routed() -> None:
    with tempfile.TemporaryFile() as sink:
        rounds = parallel.routed_write(each_interrupts, range(1000), sink, jobs=2, route=by_tens)
        metas = [meta for one in rounds for meta in one]
    assert len(metas) == 1000
    assert os.getpid() not in {pid for pid, _ in metas}
    assert all(ignores for _, ignores in metas)

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

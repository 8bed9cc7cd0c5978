"""The standard streams made safe before any work: closed descriptors, encodings, stderr.

(Imported by :mod:`ketadose.cli.exits`, which points stdout at ``/dev/null`` after a failed
write with :func:`discard_stdout`.)
"""

import contextlib
import errno
import io
import os
import sys
from typing import BinaryIO, TextIO


class _Closed(io.TextIOBase):
    """Stands in for a standard stream whose descriptor was closed when ketadose started.

    Writing (or reading) raises ``OSError(EBADF)``, which the error mapping turns into its
    documented exit code: data that cannot be delivered is never reported as done.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def _closed(self) -> OSError:
        return OSError(errno.EBADF, f"{self._name} is closed")

    def write(self, text: str) -> int:
        raise self._closed()

    def read(self, size: int | None = -1) -> str:
        raise self._closed()

    def fileno(self) -> int:
        raise self._closed()

    @property
    def buffer(self) -> BinaryIO:
        """The binary stream: refused, as the text one is."""
        raise self._closed()

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, as on a real stream
        """What a stream would be written in."""
        return "utf-8"


class _Messages(io.TextIOBase):
    """stderr for messages that must never fail the command they report on.

    When stderr is closed, full (``/dev/full``) or gone, a message is lost but the exit code
    stays the documented one: a write error is swallowed, and the descriptor is pointed at
    ``/dev/null`` so that nothing left in a buffer fails again when Python exits (which would
    turn any exit code into 120).
    """

    def __init__(self, stream: "TextIO | None") -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is not None:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._lost()
        return len(text)

    def flush(self) -> None:
        if self._stream is not None:
            try:
                self._stream.flush()
            except (OSError, ValueError):
                self._lost()

    def _lost(self) -> None:
        self._stream = None
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return 2

    @property
    def encoding(self) -> str:  # type: ignore[override]  # read-only, as on a real stream
        """The encoding of the stderr it writes to."""
        return getattr(self._stream, "encoding", None) or "utf-8"


def standard_streams() -> None:
    """Make stdin, stdout and stderr safe before any work.

    - A closed descriptor 0, 1 or 2 is held open on ``/dev/null``, so that no file opened later
      (the store, an output's temporary file) takes its number and receives stray output; the
      Python stream becomes a :class:`_Closed` that refuses to be used (exit 2).
    - stdout carries UTF-8 whatever ``PYTHONIOENCODING`` or the locale say: the output is a
      contract, the same bytes as ``--output FILE`` writes, and an ASCII or Latin-1 stream
      could not carry "µ", "≥" or "—" (and UTF-16 would break every reader of JSON or CSV).
    - stderr keeps the environment's encoding for the person reading it, with characters it
      cannot carry written as escapes, and never fails a command (:class:`_Messages`).
    """
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
            with contextlib.suppress(OSError):
                null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
                if null != fd:
                    os.dup2(null, fd)
                    os.close(null)
    if 0 in closed or sys.stdin is None:
        sys.stdin = _Closed("stdin")
    if 1 in closed or sys.stdout is None:
        sys.stdout = _Closed("stdout")
    elif isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="strict")
    stderr = None if 2 in closed else sys.stderr
    if isinstance(stderr, io.TextIOWrapper):
        stderr.reconfigure(errors="backslashreplace")
    sys.stderr = _Messages(stderr)


def discard_stdout() -> None:
    """Point stdout's descriptor at ``/dev/null`` after a write to it failed.

    What is still in its buffer then goes nowhere instead of failing again when Python exits
    (which would make the exit code 120).
    """
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)

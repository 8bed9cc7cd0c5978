"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ketadose.errors import InputError


@contextlib.contextmanager
def atomic_file(path: Path, *, replace: bool = False) -> Iterator[BinaryIO]:
    """Stream a file into place atomically; refuse if it already exists, unless ``replace``.

    The bytes go to a temporary file in the same directory and are flushed to disk. Only when
    the ``with`` block ends without an error is the file hard-linked into place, which fails if
    ``path`` exists, or with ``replace`` renamed over it (``os.replace``). Either way the file
    appears whole or not at all, and a failure at any point (an exception, a kill) leaves an
    existing file as it was.

    Args:
        path: The file to write.
        replace: Replace an existing file (``--force``).

    Yields:
        The binary stream to write to.

    Raises:
        InputError: When ``path`` exists (and not ``replace``) or cannot be written.
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise InputError(f"cannot write in {directory}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            # mkstemp makes the file 0600; give it the mode any new file would have.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(stream.fileno(), 0o666 & ~umask)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        try:
            if replace:
                os.replace(temporary, path)
            else:
                os.link(temporary, path)
        except FileExistsError:
            raise InputError(f"{path} exists; refusing to overwrite it") from None
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def write_new(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write a whole file atomically (see :func:`atomic_file`).

    Args:
        path: The file to write.
        data: Its content.
        replace: Replace an existing file.

    Raises:
        InputError: When ``path`` exists (and not ``replace``) or cannot be written.
    """
    with atomic_file(path, replace=replace) as stream:
        stream.write(data)

"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ketadose.errors import InputError, InputField


def _kind(mode: int) -> str:
    """What a file that is not a regular file is, for messages."""
    for test, name in (
        (stat.S_ISLNK, "symbolic link"),
        (stat.S_ISDIR, "directory"),
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def check_target(path: Path, *, replace: bool = False) -> None:
    """Refuse a file that :func:`atomic_file` would not write, without opening it.

    The file may be missing (its directory must exist) or, with ``replace``, a regular file.
    Anything else is refused: a directory, a named pipe (opening one for writing would block),
    a device such as ``/dev/null`` (renaming over it would replace the device node itself), a
    socket, and a symbolic link, even to a regular file: ``os.replace`` would put the new file
    where the link is and leave its target as it was, which is not what "replace FILE" means.
    Only ``lstat`` is used, so nothing is opened or followed.

    Args:
        path: The file to write.
        replace: Whether an existing regular file may be replaced (``--force``).

    Raises:
        InputError: When ``path`` cannot be written as asked.
    """
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise InputError(f"cannot write {path}: {error.strerror}") from None
    if mode is not None and not replace:
        raise InputError(f"{path} exists; refusing to overwrite it")
    if mode is not None and stat.S_ISREG(mode):
        return
    if mode is not None:
        raise InputError(
            f"{path} is a {_kind(mode)}, not a regular file: ",
            InputField.FORCE,
            " replaces regular files only; write to a new file name",
        )
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {path}: there is no directory {directory}")


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
        InputError: When ``path`` exists (and not ``replace``), is not a regular file (see
            :func:`check_target`) or cannot be written.
    """
    check_target(path, replace=replace)
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
                # Checked again: the file may have changed while the content was made.
                check_target(path, replace=True)
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

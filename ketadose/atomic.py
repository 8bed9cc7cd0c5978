"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ketadose.errors import InputError


def write_new(path: Path, data: bytes) -> None:
    """Write a new file atomically; refuse if it already exists.

    The bytes go to a temporary file in the same directory, are flushed to disk, and are then
    hard-linked into place, which fails if ``path`` exists: the file appears whole or not at
    all, and an existing file is never replaced.

    Args:
        path: The file to create.
        data: Its content.

    Raises:
        InputError: When ``path`` exists or its directory cannot be written.
    """
    directory = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise InputError(f"cannot write in {directory}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise InputError(f"{path} exists; refusing to overwrite it") from None
        except OSError as error:
            raise InputError(f"cannot write {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)

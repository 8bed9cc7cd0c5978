"""The files a command reads, and ``-`` for stdin wherever one is read.

Every file-reading option and argument takes ``-`` for stdin (``--protocols -``, ``--limits -``,
``next --history -``, ``session vitals --file -``, ``limits validate -``, ``batch -``). Stdin can
be read once: :func:`stdin_option`, the options' callback, refuses a second ``-`` while the
command line is parsed, before any work. :func:`read` gives the bytes and the name messages use
("stdin", or the path), so the core loaders never open a path themselves.
"""

import sys
from pathlib import Path
from typing import Any

import typer

#: The argument that means stdin (or, for ``--output``, stdout).
DASH = "-"

#: The bytes read from stdin in this run, by the stream they were read from (a new run, or a
#: test's runner, has a new stream).
_stdin: dict[str, Any] = {}


def is_dash(path: Path | str | None) -> bool:
    """Whether a file option or argument names the standard stream (``-``)."""
    return path is not None and str(path) == DASH


def stdin_option(ctx: typer.Context, param: typer.CallbackParam, value: Any) -> Any:
    """The callback of every file-reading option: only one of them may be ``-`` in a run.

    Raises:
        typer.BadParameter: A second option that reads stdin (exit 2, one line).
    """
    if is_dash(value):
        name = _name(param)
        taken = ctx.meta.setdefault("ketadose.stdin", name)
        if taken != name:
            raise typer.BadParameter(f"{taken} reads stdin already: give a file here, not -")
    return value


def _name(param: Any) -> str:
    """How a parameter is shown: its longest option name, or its metavar (an argument)."""
    options = [o for o in getattr(param, "opts", ()) if o.startswith("-")]
    if options:
        return str(max(options, key=len))
    return str(getattr(param, "metavar", None) or str(param.name).upper())


def read(path: Path, *, library: bool = True) -> tuple[bytes, str]:
    """A file's bytes and the name messages give it; ``-`` reads stdin (once, whole).

    A file must be a regular one of at most ``libfile.MAX_FILE_BYTES``; so is what stdin holds.

    Args:
        path: The path given, or ``-``.
        library: A protocol or limit library (a file it cannot read is a configuration
            error, exit 5); else the patient data of one run (an input error, exit 2).

    Returns:
        The bytes, and ``"stdin"`` or the path as given.

    Raises:
        ConfigError: A library that is missing, not a regular file, too large or unreadable
            (stdin too large or unreadable).
        InputError: The same, for data that is not a library.
    """
    from ketadose.errors import ConfigError, InputError

    try:
        return _read_once(path)
    except ConfigError as error:
        if library:
            raise
        raise InputError(str(error)) from None


def _read_once(path: Path) -> tuple[bytes, str]:
    from ketadose.errors import ConfigError
    from ketadose.libfile import MAX_FILE_BYTES, read_file

    if not is_dash(path):
        return read_file(path), str(path)
    stream = sys.stdin
    if _stdin.get("stream") is not stream:
        try:
            data = stream.buffer.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigError(f"cannot read: {error.strerror}", path="stdin") from None
        if len(data) > MAX_FILE_BYTES:
            raise ConfigError(f"larger than {MAX_FILE_BYTES // 1_000_000} MB", path="stdin")
        _stdin.update(stream=stream, data=data)
    data = _stdin["data"]
    assert isinstance(data, bytes)
    return data, "stdin"

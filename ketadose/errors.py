"""The one exception hierarchy and the documented exit codes.

Every error the core raises is a :class:`KetadoseError`; the CLI maps it to its
:class:`ExitCode` in one place (``ketadose.cli.exits``). Each error class also inherits
the builtin a caller would naturally catch (``ValueError``, ``OSError``), as pint
does, so library users need not learn our names to handle bad input.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes, documented in the README and in ``design.md``."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    SOFT_LIMIT = 3
    HARD_LIMIT = 4
    CONFIG = 5
    STORE = 6
    #: Ctrl-C (SIGINT): 128 + 2, as a shell reports a command killed by the signal.
    INTERRUPTED = 130


class KetadoseError(Exception):
    """Base class of every error ketadose raises on purpose.

    Args:
        message: One line for a clinician: what is wrong and, where possible, how to fix it.

    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(KetadoseError, ValueError):
    """A value given by the user cannot be used as it stands (exit 2)."""

    exit_code = ExitCode.USAGE


class QuantityError(InputError):
    """A quantity string is malformed, has no unit, the wrong unit, or an unusable value.

    Args:
        message: The one-line explanation.
        text: The text that was refused, verbatim.
        field: What the quantity was meant to be ("weight", "dose"...).

    """

    def __init__(self, message: str, *, text: str, field: str) -> None:
        super().__init__(message)
        self.text = text
        self.field = field


class ConfigError(KetadoseError, ValueError):
    """A protocol or limit library file is unreadable or invalid (exit 5).

    Args:
        message: What is wrong.
        path: The file, as the user named it (or the shipped file's name).
        location: The path of the offending field inside the file, e.g.
            ``protocol[3].phases[0].dose``.

    """

    exit_code = ExitCode.CONFIG

    def __init__(self, message: str, *, path: str, location: str = "") -> None:
        where = f"{path}: {location}: " if location else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.location = location


class StoreError(KetadoseError, OSError):
    """The record store cannot be read or written; nothing was half-written (exit 6)."""

    exit_code = ExitCode.STORE


class StoreMigrationError(StoreError):
    """A store of an older schema was opened read-only: it must be migrated first (exit 6)."""

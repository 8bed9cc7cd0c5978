"""The one exception hierarchy and the documented exit codes.

Every error the core raises is a :class:`KetadoseError`; the CLI maps it to its
:class:`ExitCode` in one place (``ketadose.cli.exits``). Each error class also inherits
the builtin a caller would naturally catch (``ValueError``, ``OSError``), as pint
does, so library users need not learn our names to handle bad input.

**The core speaks of fields, the edge of flags.** A message about an input names it by an
:class:`InputField`, never by a command-line flag: an error is built from parts, text and fields,
``InputError("this protocol doses by body weight: give ", InputField.WEIGHT, ", e.g. 80kg")``.
``str(error)`` spells each field by its plain name ("give weight"), for library users;
:meth:`KetadoseError.spelled` lets the edge spell it its own way: the command line as its
flag ("give --weight", ``ketadose.cli.exits.flag``), a batch row as its column ("give the
weight column", ``ketadose.batch``). Parts, not a ``str.format`` template, because messages
quote what the user typed, braces and all. Text that names no input the user can give (a
quantity's kind, "the reading's time") stays plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum, IntEnum


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


class InputField(Enum):
    """An input a message can be about, by its plain name.

    Every field has a command-line flag (``tests/test_cli_errors.py`` proves it); where the
    flag is not ``--`` and the name with hyphens, ``ketadose.cli.exits`` says which it is.
    """

    WEIGHT = "weight"
    HEIGHT = "height"
    SEX = "sex"
    AGE = "age"
    DOSING_WEIGHT = "dosing weight"
    DOSE = "dose"
    RATE = "rate"
    DURATION = "duration"
    VIAL = "vial"
    BAG = "bag"
    STRENGTH = "strength"
    DROP_FACTOR = "drop factor"
    PUMP_STEP = "pump step"
    DRAW_STEP = "draw step"
    OVERRIDE_REASON = "override reason"
    MEDICATION = "medication"
    CONDITION = "condition"
    ADVERSE_EVENT = "adverse event"
    SESSION_TIME = "session time"
    DATE = "date"
    STOP = "stop time"
    STOP_REASON = "stop reason"
    SESSION_NUMBER = "session number"
    SERIES = "whole series"
    START = "start date"
    TIME_OF_DAY = "time of day"
    CLOSED = "closed day"
    HOLIDAYS = "holidays"
    DAYS = "clinic days"
    SESSIONS = "sessions"
    PER_WEEK = "sessions per week"
    PRICE = "price"
    DEFAULT_PROTOCOL = "default protocol"
    INTAKE = "intake time"
    RECOVERY = "recovery time"
    ITEMS = "items"
    TOTAL = "total"
    STEP = "time step"
    UNTIL = "end time"
    EXAMPLES = "examples"
    FORCE = "force"


#: A piece of a message: text as it stands, or a field each reader spells its own way.
Part = str | InputField


def plain(field: InputField) -> str:
    """A field's plain name, as ``str(error)`` spells it ("pump step")."""
    return field.value


def joined(fields: Iterable[InputField], separator: str) -> tuple[Part, ...]:
    """Fields with a separator between them, as parts of a message ("height and sex")."""
    parts: list[Part] = []
    for field in fields:
        parts += [separator, field] if parts else [field]
    return tuple(parts)


class KetadoseError(Exception):
    """Base class of every error ketadose raises on purpose.

    Args:
        *parts: One line for a clinician: what is wrong and, where possible, how to fix it;
            text and the :class:`InputField` s it is about (see the module's docstring).

    """

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, *parts: Part) -> None:
        self.parts = parts
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The message with each field by its plain name."""
        return self.spelled(plain)

    @property
    def fields(self) -> tuple[InputField, ...]:
        """The fields the message names, in order."""
        return tuple(part for part in self.parts if isinstance(part, InputField))

    def spelled(self, spell: Callable[[InputField], str]) -> str:
        """The message with each field spelled by ``spell`` (the command line: its flag)."""
        return "".join(part if isinstance(part, str) else spell(part) for part in self.parts)

    def __str__(self) -> str:
        return self.message


class InputError(KetadoseError, ValueError):
    """A value given by the user cannot be used as it stands (exit 2)."""

    exit_code = ExitCode.USAGE


class QuantityError(InputError):
    """A quantity string is malformed, has no unit, the wrong unit, or an unusable value.

    Args:
        *parts: The one-line explanation.
        text: The text that was refused, verbatim.
        field: What the quantity was meant to be ("weight", "dose"..., or a :class:`InputField`).

    """

    def __init__(self, *parts: Part, text: str, field: Part) -> None:
        super().__init__(*parts)
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


class OverrideRefusedError(KetadoseError):
    """An override the acting clinician's role may not make: the soft finding stands (exit 3)."""

    exit_code = ExitCode.SOFT_LIMIT


class StoreMigrationError(StoreError):
    """A store of an older schema was opened read-only: it must be migrated first (exit 6).

    Args:
        message: What is wrong.
        version: The schema version the store has.
    """

    def __init__(self, message: str, *, version: int) -> None:
        super().__init__(message)
        self.version = version

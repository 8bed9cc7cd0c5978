"""Every exit decision of the command line: which error or outcome ends with which code.

The codes are documented in :class:`ketadose.errors.ExitCode`. A command's body is wrapped by
:func:`command`; the entry point (:func:`ketadose.cli.application.main`) runs inside
:func:`entry_point` and Click's parsing inside :func:`parsing`; a checked result ends through
:func:`finish`, a batch through :func:`batch_outcome`, timed readings through
:func:`readings_outcome`. Each ends with one ``ketadose:`` line on stderr, where a core
error's fields are spelled as their flags (:func:`flag`).
"""

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import typer

from ketadose.cli.streams import discard_stdout
from ketadose.errors import ExitCode, InputField, KetadoseError

if TYPE_CHECKING:
    from ketadose.models import Status

P = ParamSpec("P")
R = TypeVar("R")

#: Set by ``--debug``: internal errors (and core errors) raise with their traceback.
_state = {"debug": False}


#: The flags that are not ``--`` and the field's name with hyphens.
_FLAGS = {
    InputField.MEDICATION: "--med",
    InputField.ADVERSE_EVENT: "--ae",
    InputField.DEFAULT_PROTOCOL: "--protocol",
    InputField.SESSION_TIME: "--at",
    InputField.STOP: "--stop",
    InputField.SESSION_NUMBER: "--session",
    InputField.SERIES: "--plan",
    InputField.START: "--start",
    InputField.TIME_OF_DAY: "--time",
    InputField.CLOSED: "--closed",
    InputField.DAYS: "--days",
    InputField.PER_WEEK: "--per-week",
    InputField.STEP: "--step",
    InputField.UNTIL: "--until",
    InputField.INTAKE: "--intake",
    InputField.RECOVERY: "--recovery",
}


def flag(field: InputField) -> str:
    """The command-line flag of a field the core names: ``--pump-step`` for "pump step"."""
    return _FLAGS.get(field) or "--" + field.value.replace(" ", "-")


def set_debug(debug: bool) -> None:
    """Show tracebacks (``--debug``) or not."""
    _state["debug"] = debug


def fail(message: str, code: ExitCode) -> typer.Exit:
    r"""Print one line on stderr and return the Exit to raise.

    Input echoed in a message cannot break the line or drive the terminal: line breaks become
    spaces and any other control character its escape (``\x1b``), so the line shows exactly
    what was typed.
    """
    line = "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"
        # one line, spaces (in paths, too) kept; Click's list indent (a tab after a line
        # break, "Choose from:\n\tdose,") goes with the break, a tab typed elsewhere shows
        for c in " ".join(
            line.lstrip("\t") if n else line for n, line in enumerate(message.splitlines())
        )
    )
    typer.echo(f"ketadose: {line}", err=True)
    return typer.Exit(int(code))


def command(function: Callable[P, R]) -> Callable[P, R]:
    """Map every error a command raises to one stderr line and its documented exit code.

    The single place where exceptions become exit codes: ``KetadoseError`` carries its own
    code; output that cannot be delivered (a closed or full stdout, a reader gone away) is 2;
    Ctrl-C is 130; anything else is a bug (exit 1), shown with its traceback only under
    ``--debug``.

    Args:
        function: The command body.

    Returns:
        The wrapped command.

    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KetadoseError as error:
            if _state["debug"]:
                raise
            raise fail(f"error: {error.spelled(flag)}", error.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", ExitCode.INTERRUPTED) from None
        except BrokenPipeError:
            # The reader stopped reading: send the rest nowhere, and say so on stderr.
            discard_stdout()
            raise fail("output closed before it was all written", ExitCode.USAGE) from None
        except OSError as error:
            if _state["debug"]:
                raise
            discard_stdout()
            raise fail(f"error: cannot write output: {error.strerror}", ExitCode.USAGE) from None
        except Exception as error:
            if _state["debug"]:
                raise
            raise fail(
                f"internal error ({type(error).__name__}: {error}); this is a bug: "
                "rerun with --debug for the traceback and report it",
                ExitCode.INTERNAL,
            ) from None

    return wrapper


def finish(
    status: "Status",
    ready: bool,
    refused: str,
    *,
    soft: str = 'soft limit exceeded: to go ahead, rerun with --override-reason "why"',
) -> None:
    """End a checked command with its documented exit code and one line saying why."""
    from ketadose.gate import exit_code

    code = exit_code(status, ready)
    if code is ExitCode.HARD_LIMIT:
        raise fail(f"refused: {refused}", code)
    if code is ExitCode.SOFT_LIMIT:
        raise fail(soft, code)


def batch_outcome(counts: dict[str, int]) -> None:
    """End a batch by what its records say.

    Exit 4 if any plan crosses a hard limit, else 2 if any row was refused, else 3 if any plan
    has a soft finding, else 0.
    """
    if counts["hard"]:
        raise fail("refused: a plan crosses a hard limit (see its record)", ExitCode.HARD_LIMIT)
    if counts["error"]:
        raise fail("some rows were refused (see their error records)", ExitCode.USAGE)
    if counts["soft"]:
        raise fail("soft limit exceeded in some plans: review them", ExitCode.SOFT_LIMIT)


def readings_outcome(worst: str) -> None:
    """End ``session vitals`` by its worst answer: stop 4, pause 3, continue 0."""
    if worst == "stop":
        raise fail("stop: a reading is past a hard during-session limit", ExitCode.HARD_LIMIT)
    if worst == "pause":
        raise fail("pause: a reading is past a soft limit; recheck", ExitCode.SOFT_LIMIT)


def usage(message: str) -> SystemExit:
    """A usage error found before Click runs (exit 2), as the SystemExit to raise."""
    return SystemExit(fail(f"error: {message}", ExitCode.USAGE).exit_code)


@contextlib.contextmanager
def entry_point() -> Iterator[None]:
    """Around the whole run: Ctrl-C and output that could not be written.

    Ctrl-C anywhere is one ``ketadose: interrupted`` line and exit 130 (not 1, a bug); help
    or a usage message that could not be written is exit 2.
    """
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(fail("interrupted", ExitCode.INTERRUPTED).exit_code) from None
    except OSError as error:  # help or a usage message that could not be written
        discard_stdout()
        raise SystemExit(
            fail(f"error: cannot write output: {error.strerror}", ExitCode.USAGE).exit_code
        ) from None


@contextlib.contextmanager
def parsing() -> Iterator[None]:
    """Around Click's parsing: usage errors, a bare group, Abort.

    Click's four-line usage report becomes one ``ketadose: error:`` line, exit 2; a group run
    without a command shows its help, exit 2; Click's Abort (Ctrl-C outside a command's body)
    is exit 130.
    """
    try:
        yield
    except typer.TyperException as error:
        if type(error).__name__ == "NoArgsIsHelpError":
            error.show()  # type: ignore[attr-defined]
            sys.exit(int(ExitCode.USAGE))
        message = error.format_message()
        context = getattr(error, "ctx", None)
        where = f" (see: {context.command_path} --help)" if context is not None else ""
        raise SystemExit(fail(f"error: {message}{where}", ExitCode.USAGE).exit_code) from None
    except typer.Abort:  # Click's word for Ctrl-C outside a command's body
        raise SystemExit(fail("interrupted", ExitCode.INTERRUPTED).exit_code) from None

"""Readable metavars in --help: what a value looks like, never a Python type (``<str>``).

Typer shows an option's value as its Python type unless a metavar is given. Rather than repeat
a metavar on every declaration, the app's group sets one on each option without its own: the
form a value takes where it has one (:data:`FORMS`), the choices where there are choices, else
the option's name in capitals (``--weight`` -> ``WEIGHT``). A metavar a declaration gives is
kept.
"""

from typing import Any

from typer.core import TyperGroup

from ketadose.cli.output import RENDERERS

#: What a value looks like, for the options whose value has a form.
FORMS = {
    "--med": "NAME[:TIME]",
    "--ae": "TERM:GRADE",
    "--bp": "SYS/DIA",
    "--bp-before": "SYS/DIA",
    "--bp-peak": "SYS/DIA",
    "--bp-after": "SYS/DIA",
    "--protocols": "FILE.toml",
    "--limits": "FILE.toml",
    "--store": "FILE|URL",
    "--output": "FILE",
    "--history": "FILE.json",
    "--at": "TIME",
    "--start": "DATE",
    "--closed": "DATE",
    "--time": "HH:MM",
    "--days": "mon,wed,...",
    "--holidays": "COUNTRY",
}


def metavar(option: Any) -> str:
    """The metavar of one option: its form, its choices, or its name in capitals.

    Args:
        option: A Typer option (``opts``, ``type_descriptor``).

    Returns:
        E.g. ``NAME[:TIME]``, ``male|female``, ``WEIGHT``.
    """
    name: str = max(option.opts, key=len)
    if name in FORMS:
        return FORMS[name]
    descriptor = getattr(option, "type_descriptor", None)
    choices = (
        getattr(descriptor, "choices", None) if getattr(descriptor, "is_choice", False) else None
    )
    if choices:
        return "|".join(str(getattr(choice, "value", choice)) for choice in choices)
    return name.lstrip("-").upper().replace("-", "_")


def readable(command: Any, path: str = "") -> None:
    """Set a readable metavar on every option of a command and its subcommands that has none.

    Args:
        command: A click command or group (Typer's).
        path: The command's name under the app ("protocols list"); its ``--format`` shows
            only the formats that fit it.
    """
    for param in command.params:
        flag = getattr(param, "is_flag", False) or getattr(param, "count", False)
        if param.param_type_name == "option" and not flag and param.metavar is None:
            param.metavar = metavar(param)
        if param.param_type_name == "argument":
            _argument(param)
        if param.name == "output_format" and path in RENDERERS:
            _formats(param, path)
    for name, sub in getattr(command, "commands", {}).items():
        readable(sub, f"{path} {name}".strip())


#: How --help describes each format.
_DESCRIBED = {"html": "html (a printable sheet)", "fhir": "fhir (an R4 Bundle)"}


def _formats(option: Any, path: str) -> None:
    """The shared ``--format`` of one command: the formats that fit it, not all six."""
    fits = [str(f) for f in RENDERERS[path]]
    option.metavar = "|".join(["table", *fits])
    named = [_DESCRIBED.get(f, f) for f in fits]
    listed = ", ".join(["table (default)", *named[:-1]]) + f" or {named[-1]}"
    option.help = f"{listed}; --json is short for --format json."


def _argument(argument: Any) -> None:
    """An argument shows its name (``ID``, ``FILE.toml``) and its choices, not ``<str>``."""
    if argument.metavar is None:
        argument.metavar = "FILE.toml" if argument.name == "path" else argument.name.upper()
    descriptor = getattr(argument, "type_descriptor", None)
    choices = (
        getattr(descriptor, "choices", None) if getattr(descriptor, "is_choice", False) else None
    )
    shown = None if not choices else "|".join(str(getattr(c, "value", c)) for c in choices)
    # Typer prints an argument's Python type after its name whatever the metavar; the one
    # place to say otherwise is this method, on the instance.
    argument.display_type_rich = lambda ctx: shown


class ReadableGroup(TyperGroup):
    """The app's group: its commands, and its subgroups' commands, with readable metavars."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        readable(self)

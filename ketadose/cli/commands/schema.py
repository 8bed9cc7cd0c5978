"""ketadose schema: the JSON Schema of a command's JSON output."""

from enum import StrEnum
from typing import Annotated

import typer

from ketadose.cli.exits import command
from ketadose.cli.output import write

#: The documents that have a schema (``ketadose.render.schema.DOCUMENTS``, kept equal by a
#: test: the render module is not imported for --help).
SchemaName = StrEnum(
    "SchemaName",
    [
        "dose",
        "check",
        "plan",
        "next",
        "history",
        "patient",
        "batch",
        "verify",
        "simulate",
        "session",
        "score",
        "audit",
        "protocols",
        "protocol",
        "limits",
        "config",
    ],
)


@command
def schema(
    name: Annotated[
        SchemaName,
        typer.Argument(
            metavar="DOCUMENT",
            help="The command (or subcommand) whose JSON output it describes.",
        ),
    ],
) -> None:
    """Print the JSON Schema (2020-12) of a command's JSON output, made from its models."""
    from ketadose.render.schema import text

    write(text(name.value))

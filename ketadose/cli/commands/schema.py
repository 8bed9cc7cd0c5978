"""ketadose schema: the JSON Schema of a command's JSON output."""

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli.exits import command
from ketadose.cli.output import write

if TYPE_CHECKING:
    pass


class SchemaName(StrEnum):
    """Choices for schema."""

    dose = "dose"
    check = "check"
    plan = "plan"
    next = "next"
    history = "history"
    batch = "batch"
    verify = "verify"
    simulate = "simulate"


@command
def schema(
    name: Annotated[
        SchemaName,
        typer.Argument(metavar="COMMAND", help="dose, check, plan, next, history or batch."),
    ],
) -> None:
    """Print the JSON Schema (2020-12) of a command's JSON output, made from its models."""
    from ketadose.render.schema import text

    write(text(name.value))

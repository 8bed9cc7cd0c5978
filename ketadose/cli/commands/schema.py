"""ketadose schema: the JSON Schema of a command's JSON output."""

from enum import StrEnum
from typing import Annotated

import typer

from ketadose.cli.exits import command
from ketadose.cli.output import write
from ketadose.render.schema import DOCUMENTS

#: Choices for schema: the documents ``ketadose.render.schema`` describes (its one table).
SchemaName = StrEnum("SchemaName", [(name, name) for name in DOCUMENTS])  # type: ignore[misc]


@command
def schema(
    name: Annotated[
        SchemaName,
        typer.Argument(
            metavar="DOCUMENT",
            help="The command (or subcommand) whose JSON output it describes: "
            + ", ".join(DOCUMENTS)
            + ".",
        ),
    ],
) -> None:
    """Print the JSON Schema (2020-12) of a command's JSON output, made from its models."""
    from ketadose.render.schema import text

    write(text(name.value))

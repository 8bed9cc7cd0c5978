"""ketadose protocols list and show: the protocol library in effect."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    ForceFlag,
    FormatOpt,
    JsonFlag,
    OutputFile,
    ProtocolsFile,
)
from ketadose.cli.output import choose_format, emit

if TYPE_CHECKING:
    from rich.console import Console

    from ketadose.protocols import ProtocolEntry


def _list_table(entries: "list[ProtocolEntry]", console: "Console") -> None:
    from ketadose.render import table  # with rich, only when a table is printed

    table.protocol_list(entries, console)


def _detail_table(entry: "ProtocolEntry", console: "Console") -> None:
    from ketadose.render import table

    table.protocol_detail(entry, console)


@command
def protocols_list(
    protocols: ProtocolsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
) -> None:
    """List the protocols in effect: id, programme, series and library."""
    chosen = choose_format("protocols list", output_format, output, force, json=json)
    entries = list(env.library(protocols).values())
    emit(
        "protocols list",
        chosen,
        output,
        force,
        (entries,),
        lambda console: _list_table(entries, console),
    )


@command
def protocols_show(
    protocol_id: Annotated[str, typer.Argument(metavar="ID", help="Protocol id.")],
    protocols: ProtocolsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
) -> None:
    """Show one protocol with the source and evidence level of every number."""
    chosen = choose_format("protocols show", output_format, output, force, json=json)
    entry = env.library(protocols).get_protocol(protocol_id)
    emit(
        "protocols show",
        chosen,
        output,
        force,
        (entry,),
        lambda console: _detail_table(entry, console),
    )

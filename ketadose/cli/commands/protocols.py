"""ketadose protocols list and show: the protocol library in effect."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    JsonFlag,
    ProtocolsFile,
)
from ketadose.cli.output import terminal, write

if TYPE_CHECKING:
    pass


@command
def protocols_list(protocols: ProtocolsFile = None, json: JsonFlag = False) -> None:
    """List the protocols in effect: id, programme, series and library."""
    library = env.library(protocols)
    if json:
        from ketadose.render.json import protocols_document

        write(protocols_document(list(library.values())))
    else:
        from ketadose.render import table

        table.protocol_list(library.values(), terminal())


@command
def protocols_show(
    protocol_id: Annotated[str, typer.Argument(metavar="ID", help="Protocol id.")],
    protocols: ProtocolsFile = None,
    json: JsonFlag = False,
) -> None:
    """Show one protocol with the source and evidence level of every number."""
    entry = env.library(protocols).get_protocol(protocol_id)
    if json:
        from ketadose.render.json import protocols_document

        write(protocols_document([entry], single=True))
    else:
        from ketadose.render import table

        table.protocol_detail(entry, terminal())

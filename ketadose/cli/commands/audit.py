"""ketadose audit: the append-only audit log."""

from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    JsonFlag,
    StoreFile,
    TzOpt,
)
from ketadose.cli.output import terminal, write

if TYPE_CHECKING:
    pass


@command
def audit(
    patient: Annotated[str | None, typer.Option(help="Only this patient's entries.")] = None,
    store: StoreFile = None,
    json: JsonFlag = False,
    tz: TzOpt = None,
) -> None:
    """Read the audit log (append-only): findings, overrides and reasons, who and when."""
    from ketadose.render import records

    with env.open_store(store, read_only=True) as db:
        entries = db.audit(patient)
    if json:
        write(records.audit_json(entries))
    else:
        records.audit_table(entries, terminal())

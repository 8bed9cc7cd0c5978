"""ketadose audit: the append-only audit log."""

from typing import Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    ForceFlag,
    FormatOpt,
    JsonFlag,
    OutputFile,
    StoreFile,
    TzOpt,
)
from ketadose.cli.output import choose_format, emit


@command
def audit(
    patient: Annotated[str | None, typer.Option(help="Only this patient's entries.")] = None,
    store: StoreFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Read the audit log (append-only): findings, overrides and reasons, who and when."""
    from ketadose.render import records

    chosen = choose_format("audit", output_format, output, force, json=json)
    with env.open_store(store, read_only=True) as db:
        entries = db.audit(patient)
    emit(
        "audit",
        chosen,
        output,
        force,
        (entries,),
        lambda console: records.audit_table(entries, console),
    )

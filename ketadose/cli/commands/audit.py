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
from ketadose.cli.output import OutputFormat, choose_format, emit, emit_chunks


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
        if chosen in (OutputFormat.json, OutputFormat.csv):
            # Streamed from the store's cursor: flat memory for any length of log.
            chunks = (
                records.audit_json_chunks
                if chosen is OutputFormat.json
                else records.audit_csv_chunks
            )
            emit_chunks(output, force, chunks(db.iter_audit(patient)))
            return
        entries = db.audit(patient)
    emit(
        "audit",
        chosen,
        output,
        force,
        (entries,),
        lambda console: records.audit_table(entries, console),
    )

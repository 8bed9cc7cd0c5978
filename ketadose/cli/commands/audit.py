"""ketadose audit: the append-only audit log; ``audit verify`` recomputes its hash chain."""

from enum import StrEnum
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


class Action(StrEnum):
    """What ``audit`` does besides reading the log."""

    verify = "verify"


@command
def audit(
    action: Annotated[
        Action | None,
        typer.Argument(
            help="verify: recompute the hash chains of the log and the sessions, and name "
            "the first entry edited, deleted, inserted or reordered (exit 6)."
        ),
    ] = None,
    patient: Annotated[str | None, typer.Option(help="Only this patient's entries.")] = None,
    store: StoreFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Read the audit log (append-only): findings, overrides and reasons, who and when.

    The log ends with its chain head (the last entry's hash): printed, it pins the log.
    """
    from ketadose.render import records

    if action is Action.verify:
        return _verify(store, json, output_format, output, force, patient)
    chosen = choose_format("audit", output_format, output, force, json=json)
    with env.open_store(store, read_only=True) as db:
        head = db.chain_head()
        if chosen is OutputFormat.json:
            # Streamed from the store's cursor: flat memory for any length of log.
            emit_chunks(output, force, records.audit_json_chunks(db.iter_audit(patient), head))
            return
        if chosen is OutputFormat.csv:
            emit_chunks(output, force, records.audit_csv_chunks(db.iter_audit(patient)))
            return
        entries = db.audit(patient)
    emit(
        "audit",
        chosen,
        output,
        force,
        (entries, head),
        lambda console: records.audit_table(entries, console, head),
    )


def _verify(
    store: StoreFile,
    json: bool,
    output_format: OutputFormat | None,
    output: OutputFile,
    force: bool,
    patient: str | None,
) -> None:
    """``audit verify``: both chains recomputed; exit 6 naming the first break of each."""
    from ketadose.cli.commands.store import chain_states, finish
    from ketadose.errors import InputError
    from ketadose.render.store_doc import ChainCheck, lines

    if patient is not None:
        raise InputError("audit verify checks the whole chain: --patient does not fit it")
    chosen = choose_format("audit verify", output_format, output, force, json=json)
    path = env.store_location(store)
    with env.open_store(store, read_only=True) as db:
        chains = chain_states(db.chains())
        crossings = db.crossings()
    problems = tuple(chain.detail for chain in chains if chain.detail is not None)
    problems += tuple(crossing.detail for crossing in crossings)
    document = ChainCheck(store=str(path), chains=chains, problems=problems)
    text = lines(str(path), chains, ()) if chosen is OutputFormat.table else ""
    emit("audit verify", chosen, output, force, (document,), text)
    finish(str(path), problems)

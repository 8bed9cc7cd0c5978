"""ketadose patient add and show: pseudonymous patients in the record store."""

from typing import Annotated

import typer

from ketadose.cli import env
from ketadose.cli.exits import command
from ketadose.cli.options import (
    ForceFlag,
    FormatOpt,
    HeightOpt,
    JsonFlag,
    OutputFile,
    PatientArg,
    ProtocolId,
    ProtocolsFile,
    SexOpt,
    StoreFile,
    TzOpt,
)
from ketadose.cli.output import choose_format, emit


@command
def patient_add(
    patient_id: Annotated[str, typer.Argument(metavar="ID", help="The clinic's pseudonymous id.")],
    protocol: ProtocolId,
    weight: Annotated[str, typer.Option(help="Body weight with unit: 80kg.")],
    baseline: Annotated[
        float, typer.Option(help="Baseline score on the protocol's response scale.")
    ],
    height: HeightOpt = None,
    sex: SexOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    tz: TzOpt = None,
) -> None:
    """Add a pseudonymous patient: protocol, weight, baseline score."""
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.records import PatientRecord
    from ketadose.units import Kind, parse_as

    patient_id = inputs.patient_id(patient_id)
    if not 0 <= baseline <= 1000:
        raise InputError("--baseline must be a score from 0 to 1000")
    env.library(protocols).get_protocol(protocol)
    record = PatientRecord(
        id=patient_id,
        protocol=protocol,
        baseline=baseline,
        weight_kg=parse_as(weight, Kind.WEIGHT),
        height_cm=None if height is None else parse_as(height, Kind.HEIGHT),
        sex=None if sex is None else sex.value,
    )
    with env.open_store(store) as db:
        db.add_patient(record, at=env.now())
    typer.echo(f"ketadose: added patient {record.id}", err=True)


@command
def patient_show(
    patient_id: PatientArg,
    store: StoreFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Show a patient and the sessions recorded."""
    chosen = choose_format("patient show", output_format, output, force, json=json)
    with env.open_store(store, read_only=True) as db:
        record = db.patient(patient_id)
        sessions = db.sessions(patient_id)
    from ketadose.render import records

    emit(
        "patient show",
        chosen,
        output,
        force,
        (record, sessions),
        lambda console: records.history_table(record, sessions, console),
    )

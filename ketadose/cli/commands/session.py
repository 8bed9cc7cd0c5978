"""ketadose session vitals, show and discharge: a recorded session's readings and end."""

from pathlib import Path
from typing import Annotated

import typer

from ketadose.cli import audit_log, env
from ketadose.cli.exits import command, fail, readings_outcome
from ketadose.cli.options import (
    ClinicianOpt,
    ForceFlag,
    FormatOpt,
    JsonFlag,
    LimitsFile,
    OutputFile,
    PatientArg,
    ProtocolsFile,
    StoreFile,
    TzOpt,
)
from ketadose.cli.output import choose_format, emit
from ketadose.cli.sources import read, stdin_option
from ketadose.errors import ExitCode, InputField

SessionNumber = Annotated[
    int | None,
    typer.Option("--session", help="The session's number (default: the latest started)."),
]


@command
def session_vitals(
    patient_id: PatientArg,
    at: Annotated[
        str | None, typer.Option("--at", help="When it was taken: 2026-12-07T09:10.")
    ] = None,
    bp: Annotated[str | None, typer.Option("--bp", help="Blood pressure: 150/92.")] = None,
    hr: Annotated[str | None, typer.Option("--hr", help="Heart rate: 88.")] = None,
    spo2: Annotated[str | None, typer.Option("--spo2", help="SpO2: 97.")] = None,
    sedation: Annotated[
        int | None, typer.Option("--sedation", help="Sedation on the protocol's scale (MOAA/S).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="Several readings: CSV with at,bp,hr,spo2,sedation; - reads stdin.",
            dir_okay=False,
            callback=stdin_option,
        ),
    ] = None,
    number: SessionNumber = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    tz: TzOpt = None,
) -> None:
    """Add timed readings to a session; each is checked and answered continue, pause or stop."""
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.monitoring import answer_readings, session_of, within_session

    zone = env.zone()
    if file is not None:
        if at or bp or hr or spo2 or sedation is not None:
            raise InputError("--file holds the readings: give no --at, --bp, --hr, --spo2")
        rows = inputs.reading_rows(*read(file, library=False), zone)
    else:
        if at is None:
            raise InputError("give --at (when the reading was taken), or --file")
        if bp is None and hr is None and spo2 is None:
            raise InputError("a reading needs --bp, --hr or --spo2")
        rows = [inputs.reading(at, bp, hr, spo2, sedation, zone=zone, where="")]
    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    with env.open_store(store) as db:
        record = db.patient(patient_id)
        protocol = library.get_protocol(record.protocol).protocol
        session = session_of(db.sessions(patient_id), patient_id, number, rows[0].at)
        assert session.id is not None
        within_session(protocol, session, rows)
        answered = answer_readings(limit_library, protocol, session, rows)
        entry = audit_log.entry(
            clinician,
            "session vitals",
            patient_id,
            {"session": session.id, "readings": len(answered.readings), "answer": answered.worst},
            [f for flagged in answered.flagged for f in flagged],
            answered.status,
            None,
            limit_library.ref.sha256,
        )
        db.add_readings(session.id, answered.readings, entry)
    for reading, flagged in zip(answered.readings, answered.flagged, strict=True):
        why = "" if not flagged else ": " + "; ".join(f.message for f in flagged)
        typer.echo(f"{reading.at:%Y-%m-%d %H:%M} {reading.answer.upper()}{why}")
    readings_outcome(answered.worst)


@command
def session_show(
    patient_id: PatientArg,
    number: SessionNumber = None,
    at: Annotated[
        str | None, typer.Option("--at", help="As of (default: now), for discharge readiness.")
    ] = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    json: JsonFlag = False,
    output_format: FormatOpt = None,
    output: OutputFile = None,
    force: ForceFlag = False,
    tz: TzOpt = None,
) -> None:
    """Show a session: dose planned and given with its basis, readings, what is missing."""
    from ketadose import inputs
    from ketadose.monitoring import session_of
    from ketadose.render import records

    chosen = choose_format("session show", output_format, output, force, json=json)
    moment = inputs.moment(at, field=InputField.SESSION_TIME, zone=env.zone()) if at else env.now()
    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    with env.open_store(store, read_only=True) as db:
        record = db.patient(patient_id)
        session = session_of(db.sessions(patient_id), patient_id, number, None)
    protocol = library.get_protocol(record.protocol).protocol
    report = records.session_report(protocol, limit_library, session, moment)
    emit(
        "session show",
        chosen,
        output,
        force,
        (report,),
        lambda console: records.session_report_table(report, console),
    )


@command
def session_discharge(
    patient_id: PatientArg,
    at: Annotated[str | None, typer.Option("--at", help="When (default: now).")] = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="The protocol's discharge criteria are met.")
    ] = False,
    number: SessionNumber = None,
    clinician: ClinicianOpt = None,
    store: StoreFile = None,
    protocols: ProtocolsFile = None,
    limits: LimitsFile = None,
    tz: TzOpt = None,
) -> None:
    """Discharge after a session, once the patient is ready (vitals, observation, criteria)."""
    from ketadose import inputs
    from ketadose.errors import InputError
    from ketadose.monitoring import readiness, session_of

    moment = inputs.moment(at, field=InputField.SESSION_TIME, zone=env.zone()) if at else env.now()
    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    with env.open_store(store) as db:
        record = db.patient(patient_id)
        session = session_of(db.sessions(patient_id), patient_id, number, moment)
        assert session.id is not None
        protocol = library.get_protocol(record.protocol).protocol
        if session.discharged_at is not None:
            raise InputError(f"session {session.id} is discharged already")
        ready = readiness(protocol, limit_library, session, moment, confirmed=confirm)
        if not ready.ready:
            raise fail("not ready for discharge: " + "; ".join(ready.reasons), ExitCode.SOFT_LIMIT)
        entry = audit_log.entry(
            clinician,
            "session discharge",
            patient_id,
            {
                "session": session.id,
                "at": moment.isoformat(),
                "criteria": " | ".join(ready.criteria),
            },
            [],
            "ok",
            None,
            limit_library.ref.sha256,
        )
        db.discharge(session.id, moment, entry)
    typer.echo(f"ketadose: discharged {patient_id} after session {session.id}", err=True)

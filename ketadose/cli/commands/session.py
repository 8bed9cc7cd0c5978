"""ketadose session vitals, show and discharge: a recorded session's readings and end."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketadose.cli import env
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
from ketadose.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from ketadose.protocols import Protocol
    from ketadose.records import Reading, SessionRecord
    from ketadose.store import Store


def _session_of(
    db: "Store", patient_id: str, number: int | None, at: "datetime | None"
) -> "SessionRecord":
    """``--session N``, else the latest session started by ``at`` or starting soon after it.

    A reading up to :data:`READING_LEAD_H` hours before a session's start belongs to that
    session (the reading before the dose).
    """
    from datetime import timedelta

    from ketadose.clock import instant
    from ketadose.errors import InputError

    sessions = db.sessions(patient_id)
    if number is not None:
        found = [s for s in sessions if s.id == number]
        if not found:
            raise InputError(f"patient {patient_id} has no session {number}")
        return found[0]
    lead = timedelta(hours=READING_LEAD_H)
    started = [s for s in sessions if at is None or instant(s.at) - lead <= instant(at)]
    if not started:
        raise InputError(f"patient {patient_id} has no session started by then: give --session N")
    return started[-1]


#: Hours before its start that a reading still belongs to a session (the reading before dosing),
#: and after the end of its observation (when no discharge is recorded).
READING_LEAD_H = 2


def _within_session(
    protocol: "Protocol", session: "SessionRecord", readings: "Sequence[Reading]"
) -> None:
    """Refuse a reading that falls outside a session: it is never filed under another one."""
    from datetime import timedelta

    from ketadose.clock import instant, shift
    from ketadose.errors import InputError
    from ketadose.monitoring import observation_end

    lead = timedelta(hours=READING_LEAD_H)
    first = shift(session.at, -lead)
    last = session.discharged_at or shift(observation_end(protocol, session), lead)
    for reading in readings:
        if not instant(first) <= instant(reading.at) <= instant(last):
            raise InputError(
                f"the reading at {reading.at:%Y-%m-%d %H:%M} is not during session {session.id} "
                f"({first:%Y-%m-%d %H:%M} to {last:%H:%M}): record its session first, or give "
                "--session N"
            )


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
    from ketadose.monitoring import check_reading, period
    from ketadose.records import Reading

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
    answers = []
    with env.open_store(store) as db:
        record = db.patient(patient_id)
        protocol = library.get_protocol(record.protocol).protocol
        session = _session_of(db, patient_id, number, rows[0].at)
        assert session.id is not None
        _within_session(protocol, session, rows)
        readings = []
        for row in rows:
            answer, found = check_reading(
                limit_library, protocol, row.vitals, period(session, row.at)
            )
            flagged = tuple(f for f in found if f.severity.value != "info")
            readings.append(
                Reading(
                    at=row.at,
                    systolic=row.systolic,
                    diastolic=row.diastolic,
                    heart_rate=row.heart_rate,
                    spo2=row.spo2,
                    sedation=row.sedation,
                    answer=answer,
                    findings=tuple(f.code for f in flagged),
                )
            )
            answers.append((row.at, answer, flagged))
        worst = max((a for _, a, _ in answers), key=("continue", "pause", "stop").index)
        entry = env.audit_entry(
            clinician,
            "session vitals",
            patient_id,
            {"session": session.id, "readings": len(readings), "answer": worst},
            [f for _, _, flagged in answers for f in flagged],
            {"continue": "ok", "pause": "soft", "stop": "hard"}[worst],
            None,
            limit_library.ref.sha256,
        )
        db.add_readings(session.id, tuple(readings), entry)
    for when, answer, flagged in answers:
        why = "" if not flagged else ": " + "; ".join(f.message for f in flagged)
        typer.echo(f"{when:%Y-%m-%d %H:%M} {answer.upper()}{why}")
    readings_outcome(worst)


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
    from ketadose.render import records

    chosen = choose_format("session show", output_format, output, force, json=json)
    moment = inputs.moment(at, field="--at", zone=env.zone()) if at else env.now()
    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    with env.open_store(store) as db:
        record = db.patient(patient_id)
        session = _session_of(db, patient_id, number, None)
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
    from ketadose.monitoring import readiness

    moment = inputs.moment(at, field="--at", zone=env.zone()) if at else env.now()
    library = env.library(protocols)
    limit_library = env.limits(limits, library)
    with env.open_store(store) as db:
        record = db.patient(patient_id)
        session = _session_of(db, patient_id, number, moment)
        assert session.id is not None
        protocol = library.get_protocol(record.protocol).protocol
        if session.discharged_at is not None:
            raise InputError(f"session {session.id} is discharged already")
        ready = readiness(protocol, limit_library, session, moment, confirmed=confirm)
        if not ready.ready:
            raise fail("not ready for discharge: " + "; ".join(ready.reasons), ExitCode.SOFT_LIMIT)
        entry = env.audit_entry(
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
